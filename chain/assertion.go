package chain

import (
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionAlgorithms is the allow-list of customer-assertion algorithms.
var AssertionAlgorithms = []string{"HS256", "HS384", "HS512"}

// DefaultAssertionLifetime bounds exp - iat of customer assertions.
const DefaultAssertionLifetime = 5 * time.Minute

// AssertionClaims are the claims of a customer assertion.
type AssertionClaims struct {
	jwt.RegisteredClaims
	// Grants optionally narrows the customer's policy for this visitor.
	Grants *SIPGrant `json:"grants,omitempty"`
	// TTL optionally asks for a shorter edge-token lifetime, in seconds.
	TTL int64 `json:"ttl,omitempty"`
}

// MintAssertion signs claims with secret using alg (HS256 when empty),
// naming the secret in the kid header unless omitKid.
func MintAssertion(secret Secret, claims *AssertionClaims, alg string, omitKid bool) (string, error) {
	if alg == "" {
		alg = "HS256"
	}
	method, ok := jwt.GetSigningMethod(alg).(*jwt.SigningMethodHMAC)
	if !ok {
		return "", fmt.Errorf("assertion alg %q: %w", alg, ErrAlgorithm)
	}
	t := jwt.NewWithClaims(method, claims)
	if !omitKid {
		t.Header["kid"] = secret.ID
	}
	s, err := t.SignedString(secret.Value)
	if err != nil {
		return "", fmt.Errorf("sign assertion with %s: %w", secret.ID, err)
	}
	return s, nil
}

// Assertion is a verified customer assertion.
type Assertion struct {
	Customer  string
	SecretID  string
	Subject   string
	JTI       string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Grants    *SIPGrant
	TTL       time.Duration
}

// AssertionVerifier checks customer assertions against a Keyring. It does
// not remember jti values: the caller enforces once-only use.
type AssertionVerifier struct {
	Keys Keyring
	// Audience is the issuer URL the assertion must name in aud.
	Audience string
	// MaxLifetime bounds exp - iat; DefaultAssertionLifetime when zero.
	MaxLifetime time.Duration
	// Leeway tolerated on exp, nbf and iat.
	Leeway time.Duration
	// MaxSize bounds the token length; DefaultMaxTokenSize when zero.
	MaxSize int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verify checks an assertion: HS256/384/512 only; the secret found by kid
// (and owned by the iss customer) or, without kid, each of the iss
// customer's secrets valid at iat; aud, exp, iat, lifetime, sub and jti.
func (v *AssertionVerifier) Verify(token string) (*Assertion, error) {
	max := v.MaxSize
	if max == 0 {
		max = DefaultMaxTokenSize
	}
	if len(token) > max {
		return nil, fmt.Errorf("assertion of %d bytes: %w", len(token), ErrTooLarge)
	}
	lifetime := v.MaxLifetime
	if lifetime == 0 {
		lifetime = DefaultAssertionLifetime
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(AssertionAlgorithms),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.Leeway),
		jwt.WithTimeFunc(nowFunc(v.Now)),
		jwt.WithStrictDecoding(),
	)
	claims := new(AssertionClaims)
	var used []Secret
	var method jwt.SigningMethod
	_, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		method = t.Method
		if claims.Issuer == "" {
			return nil, fmt.Errorf("iss: %w", ErrMissingClaim)
		}
		if claims.IssuedAt == nil {
			return nil, fmt.Errorf("iat: %w", ErrMissingClaim)
		}
		iat := claims.IssuedAt.Time
		if kid, _ := t.Header["kid"].(string); kid != "" {
			s, ok := v.Keys.SecretByID(kid)
			if !ok || s.Customer != claims.Issuer {
				return nil, fmt.Errorf("secret %q of %q: %w", kid, claims.Issuer, ErrUnknownKey)
			}
			if !s.ValidAt(iat) {
				return nil, fmt.Errorf("secret %q not valid at iat: %w", kid, ErrUnknownKey)
			}
			used = []Secret{s}
			return s.Value, nil
		}
		var set jwt.VerificationKeySet
		for _, s := range v.Keys.SecretsOf(claims.Issuer) {
			if s.ValidAt(iat) {
				used = append(used, s)
				set.Keys = append(set.Keys, s.Value)
			}
		}
		if len(used) == 0 {
			return nil, fmt.Errorf("no secret of %q valid at iat: %w", claims.Issuer, ErrUnknownKey)
		}
		return set, nil
	})
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", mapJWTError(token, AssertionAlgorithms, err))
	}
	if claims.ID == "" {
		return nil, fmt.Errorf("assertion: jti: %w", ErrMissingClaim)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("assertion: sub: %w", ErrMissingClaim)
	}
	life := claims.ExpiresAt.Sub(claims.IssuedAt.Time)
	if life > lifetime {
		return nil, fmt.Errorf("assertion lives %s, more than %s: %w", life, lifetime, ErrLifetime)
	}
	if claims.TTL < 0 {
		return nil, fmt.Errorf("assertion ttl %d: %w", claims.TTL, ErrMalformed)
	}
	if claims.Grants != nil {
		if err := claims.Grants.Validate(); err != nil {
			return nil, fmt.Errorf("assertion grants: %w", err)
		}
	}
	a := &Assertion{
		Customer:  claims.Issuer,
		Subject:   claims.Subject,
		JTI:       claims.ID,
		IssuedAt:  claims.IssuedAt.Time,
		ExpiresAt: claims.ExpiresAt.Time,
		Grants:    claims.Grants,
		TTL:       time.Duration(claims.TTL) * time.Second,
	}
	a.SecretID = used[0].ID
	if len(used) > 1 {
		// The key set verified with one of several secrets: name it.
		dot := strings.LastIndexByte(token, '.')
		sig, _ := b64Strict.DecodeString(token[dot+1:])
		for _, s := range used {
			if method.Verify(token[:dot], sig, s.Value) == nil {
				a.SecretID = s.ID
				break
			}
		}
	}
	return a, nil
}
