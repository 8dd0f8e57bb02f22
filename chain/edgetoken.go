package chain

import (
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
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
	// KeyID is the kid of the key that verified the token; set by
	// EdgeVerifier.Verify, never read from or written to the claims.
	KeyID string `json:"-"`
}

// MintEdgeToken signs claims with key. The key must be active: a next key
// is published before it signs, a retired one signs no more. exp, jti and
// sub are required. The token is the compact JWS golang-jwt would write for
// the same claims (header {"alg","kid","typ":"JWT"}, claims as encoding/json
// marshals EdgeClaims), byte for byte, at little more than the cost of the
// signature.
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
	return mintEdgeToken(key, method, claims)
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

	headers headerCache[jwsHeader]
}

// Verify parses and checks token: size, algorithm allow-list, kid, the
// algorithm pinned to that key, signature, then — only once the signature
// holds — iss, aud, exp (required), nbf, iat (required), lifetime, sub and
// that the grant is well formed. Segments are strict base64url (line
// breaks, which encoding/base64 skips even in strict mode, are refused) and
// a "crit" header is refused, since no extension is understood.
func (v *EdgeVerifier) Verify(token string) (*EdgeClaims, error) {
	dot1, dot2, err := splitCompact(token, v.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("edge token: %w", err)
	}
	h, cached := v.headers.get(token[:dot1])
	if !cached {
		if h, err = decodeHeader(token[:dot1]); err != nil {
			return nil, err
		}
	}
	if !slices.Contains(EdgeAlgorithms, h.Alg) {
		return nil, fmt.Errorf("edge token alg %q: %w", h.Alg, ErrAlgorithm)
	}
	k, ok := v.Keys.LookupKey(h.Kid)
	if !ok {
		return nil, fmt.Errorf("edge token kid %q: %w", h.Kid, ErrUnknownKey)
	}
	if h.Alg != k.Alg {
		return nil, fmt.Errorf("edge token alg %s, key %s pinned to %s: %w", h.Alg, h.Kid, k.Alg, ErrAlgorithm)
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.tok = append(sc.tok[:0], token...)
	if sc.sig, err = b64Strict.AppendDecode(sc.sig[:0], sc.tok[dot2+1:]); err != nil {
		return nil, fmt.Errorf("edge token signature encoding: %w", ErrMalformed)
	}
	if !verifySignature(h.Alg, sc.tok[:dot2], sc.sig, k.Key) {
		return nil, fmt.Errorf("edge token: %w", ErrBadSignature)
	}
	if sc.payload, err = b64Strict.AppendDecode(sc.payload[:0], sc.tok[dot1+1:dot2]); err != nil {
		return nil, fmt.Errorf("edge token claims encoding: %w", ErrMalformed)
	}
	var wire edgeWire
	if err := json.Unmarshal(sc.payload, &wire); err != nil {
		return nil, fmt.Errorf("edge token claims JSON: %w", ErrMalformed)
	}
	claims, err := wire.claims()
	if err != nil {
		return nil, fmt.Errorf("edge token claims: %w", err)
	}
	if err := v.checkClaims(claims); err != nil {
		return nil, fmt.Errorf("edge token: %w", err)
	}
	if !cached {
		v.headers.put(token[:dot1], h, maxCachedHeaders)
	}
	claims.KeyID = h.Kid
	return claims, nil
}

// scratch holds the byte copies a verification works on, pooled so that a
// verification allocates only what it returns. Nothing returned refers to
// it: encoding/json copies what it keeps.
type scratch struct{ tok, sig, payload []byte }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// verifySignature checks sig over input with key for alg. Ed25519 is called
// directly on the bytes (golang-jwt takes the input as a string, which would
// cost a copy per token); the others go through golang-jwt.
func verifySignature(alg string, input, sig []byte, key crypto.PublicKey) bool {
	if alg == AlgEdDSA {
		pub, ok := key.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, input, sig)
	}
	method, err := signingMethod(alg)
	return err == nil && method.Verify(string(input), sig, key) == nil
}

// jwsHeader is what an edge verifier reads of a JWS header.
type jwsHeader struct{ Alg, Kid string }

func decodeHeader(seg string) (jwsHeader, error) {
	var h struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := decodeSegment(seg, &h); err != nil {
		return jwsHeader{}, fmt.Errorf("edge token header: %w", err)
	}
	if h.Crit != nil {
		return jwsHeader{}, fmt.Errorf("edge token: crit header not understood: %w", ErrMalformed)
	}
	return jwsHeader{Alg: h.Alg, Kid: h.Kid}, nil
}

func (v *EdgeVerifier) checkClaims(c *EdgeClaims) error {
	now := nowFunc(v.Now)()
	switch {
	case c.ExpiresAt == nil:
		return fmt.Errorf("exp: %w", ErrMissingClaim)
	case c.IssuedAt == nil:
		return fmt.Errorf("iat: %w", ErrMissingClaim)
	case c.Issuer == "":
		return fmt.Errorf("iss: %w", ErrMissingClaim)
	case len(c.Audience) == 0:
		return fmt.Errorf("aud: %w", ErrMissingClaim)
	case c.Subject == "":
		return fmt.Errorf("sub: %w", ErrMissingClaim)
	case !now.Before(c.ExpiresAt.Add(v.Leeway)):
		return fmt.Errorf("expired at %d: %w", c.ExpiresAt.Unix(), ErrExpired)
	case c.NotBefore != nil && now.Before(c.NotBefore.Add(-v.Leeway)):
		return fmt.Errorf("nbf %d: %w", c.NotBefore.Unix(), ErrNotYetValid)
	case now.Before(c.IssuedAt.Add(-v.Leeway)):
		return fmt.Errorf("iat %d: %w", c.IssuedAt.Unix(), ErrNotYetValid)
	case c.Issuer != v.Issuer:
		return fmt.Errorf("iss %q: %w", c.Issuer, ErrIssuer)
	case !slices.Contains(c.Audience, v.Audience):
		return fmt.Errorf("aud %q: %w", []string(c.Audience), ErrAudience)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt.Time); v.MaxAge > 0 && life > v.MaxAge {
		return fmt.Errorf("lives %s, more than %s: %w", life, v.MaxAge, ErrLifetime)
	}
	if err := c.SIP.Validate(); err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	return nil
}

// edgeWire is EdgeClaims as they travel: plain numbers and a raw aud, so
// decoding needs one pass of encoding/json instead of one per date.
type edgeWire struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Nbf *float64        `json:"nbf"`
	Iat *float64        `json:"iat"`
	Jti string          `json:"jti"`
	CID string          `json:"cid"`
	SIP SIPGrant        `json:"sip"`
}

func (w *edgeWire) claims() (*EdgeClaims, error) {
	c := &EdgeClaims{CID: w.CID, SIP: w.SIP}
	c.Issuer, c.Subject, c.ID = w.Iss, w.Sub, w.Jti
	c.ExpiresAt, c.NotBefore, c.IssuedAt = numericDate(w.Exp), numericDate(w.Nbf), numericDate(w.Iat)
	switch {
	case len(w.Aud) == 0 || string(w.Aud) == "null":
	case w.Aud[0] == '"':
		var one string
		if err := json.Unmarshal(w.Aud, &one); err != nil {
			return nil, fmt.Errorf("aud: %w", ErrMalformed)
		}
		c.Audience = jwt.ClaimStrings{one}
	default:
		var list []string // not ClaimStrings: its decoder goes through any
		if err := json.Unmarshal(w.Aud, &list); err != nil {
			return nil, fmt.Errorf("aud: %w", ErrMalformed)
		}
		c.Audience = list
	}
	return c, nil
}

// numericDate converts seconds as golang-jwt does (whole seconds).
func numericDate(f *float64) *jwt.NumericDate {
	if f == nil {
		return nil
	}
	sec, frac := math.Modf(*f)
	return jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9)))
}

// decodeSegment decodes one strict base64url JWS segment holding JSON.
func decodeSegment(seg string, into any) error {
	raw, err := b64Strict.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("segment encoding: %w", ErrMalformed)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("segment JSON: %w", ErrMalformed)
	}
	return nil
}
