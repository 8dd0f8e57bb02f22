package chain

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultMaxTokenSize bounds the length of an edge token a verifier parses.
const DefaultMaxTokenSize = 8 << 10

// EdgeClaims are the claims of an edge token.
type EdgeClaims struct {
	jwt.RegisteredClaims
	// CID is the customer the token was issued for.
	CID string `json:"cid"`
	// SIP is the effective grant.
	SIP SIPGrant `json:"sip"`
}

// MintEdgeToken signs claims with key. The key must be active: a next key
// is published before it signs, a retired one signs no more.
func MintEdgeToken(key *SigningKey, claims *EdgeClaims) (string, error) {
	if key.State != KeyActive {
		return "", fmt.Errorf("sign with %s key %s: %w", key.State, key.ID, ErrUnknownKey)
	}
	method, err := signingMethod(key.Alg)
	if err != nil {
		return "", err
	}
	if claims.ExpiresAt == nil || claims.ID == "" || claims.Subject == "" {
		return "", fmt.Errorf("mint edge token: exp, jti and sub: %w", ErrMissingClaim)
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = key.ID
	s, err := t.SignedString(key.Private)
	if err != nil {
		return "", fmt.Errorf("sign edge token with %s: %w", key.ID, err)
	}
	return s, nil
}

// KeyLookup finds the verification key of a kid. A KeySet is one; a
// verifier that refreshes a remote JWKS is another.
type KeyLookup interface {
	LookupKey(kid string) (VerificationKey, bool)
}

// LookupKey implements KeyLookup.
func (s KeySet) LookupKey(kid string) (VerificationKey, bool) {
	k, ok := s[kid]
	return k, ok
}

// EdgeVerifier checks edge tokens. Issuer, Audience and Keys are required.
type EdgeVerifier struct {
	Keys     KeyLookup
	Issuer   string
	Audience string
	// Leeway tolerated on exp, nbf and iat.
	Leeway time.Duration
	// MaxAge refuses tokens whose exp - iat is longer, whatever the issuer
	// meant. Zero means no bound.
	MaxAge time.Duration
	// MaxSize bounds the token length; DefaultMaxTokenSize when zero.
	MaxSize int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verify parses and checks token: size, algorithm allow-list, kid, the
// algorithm pinned to that key, signature, iss, aud, exp (required), nbf,
// iat (required), lifetime, and that the grant is well formed.
func (v *EdgeVerifier) Verify(token string) (*EdgeClaims, error) {
	max := v.MaxSize
	if max == 0 {
		max = DefaultMaxTokenSize
	}
	if len(token) > max {
		return nil, fmt.Errorf("edge token of %d bytes: %w", len(token), ErrTooLarge)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(EdgeAlgorithms),
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.Leeway),
		jwt.WithTimeFunc(nowFunc(v.Now)),
		jwt.WithStrictDecoding(),
	)
	claims := new(EdgeClaims)
	_, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := v.Keys.LookupKey(kid)
		if !ok {
			return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
		}
		if t.Method.Alg() != k.Alg {
			return nil, fmt.Errorf("token alg %s, key %s pinned to %s: %w", t.Method.Alg(), kid, k.Alg, ErrAlgorithm)
		}
		return k.Key, nil
	})
	if err != nil {
		return nil, fmt.Errorf("edge token: %w", mapJWTError(token, EdgeAlgorithms, err))
	}
	if claims.IssuedAt == nil {
		return nil, fmt.Errorf("edge token: iat: %w", ErrMissingClaim)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("edge token: sub: %w", ErrMissingClaim)
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); v.MaxAge > 0 && life > v.MaxAge {
		return nil, fmt.Errorf("edge token lives %s, more than %s: %w", life, v.MaxAge, ErrLifetime)
	}
	if err := claims.SIP.Validate(); err != nil {
		return nil, fmt.Errorf("edge token grant: %w", err)
	}
	return claims, nil
}

// mapJWTError turns golang-jwt errors into this package's errors, keeping
// any of ours that a key func returned.
func mapJWTError(token string, allowed []string, err error) error {
	for _, ours := range []error{ErrUnknownKey, ErrAlgorithm, ErrLifetime, ErrMissingClaim} {
		if errors.Is(err, ours) {
			return err
		}
	}
	var mapped error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		mapped = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !headerAlgAllowed(token, allowed):
		mapped = ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		mapped = ErrBadSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		mapped = ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		mapped = ErrMissingClaim
	case errors.Is(err, jwt.ErrTokenExpired):
		mapped = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		mapped = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		mapped = ErrAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		mapped = ErrIssuer
	default:
		mapped = ErrMalformed
	}
	return fmt.Errorf("%w: %v", mapped, err)
}

// headerAlgAllowed reports whether the unverified header's alg is in
// allowed; only used to name an error, never to choose a key.
func headerAlgAllowed(token string, allowed []string) bool {
	t, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	return err == nil && slices.Contains(allowed, t.Method.Alg())
}
