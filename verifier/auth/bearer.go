package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/chain"
)

// BearerJWT authenticates edge tokens verified locally by a
// chain.EdgeVerifier (whose Keys is typically a JWKSource). Verified tokens
// are cached until they expire.
type BearerJWT struct {
	Verifier *chain.EdgeVerifier
	// Cache remembers verified tokens; nil disables it.
	Cache *TokenCache
	// SkipHMAC leaves tokens whose header names an HS algorithm to another
	// authenticator (HSProfiles) by answering ErrNoCredentials.
	SkipHMAC bool
	// SkipOpaque leaves tokens that are not JWS compact serialisations
	// (header.payload.signature) to another authenticator (Introspection)
	// by answering ErrNoCredentials.
	SkipOpaque bool
	// PassUnknown leaves to a later authenticator (introspection), by
	// answering ErrNoCredentials, the Bearer tokens that are not this
	// issuer's: not a JWT, another (unverified) iss, or a kid unknown to
	// Keys. Those tokens are then verified there, never accepted here.
	PassUnknown bool
}

// NameBearer is the BearerJWT authenticator's name in Identity and metrics.
const NameBearer = "bearer"

// Authenticate implements Authenticator.
func (b *BearerJWT) Authenticate(_ context.Context, req *sip.Request, _ netip.AddrPort) (*Identity, error) {
	token, ok := BearerToken(req)
	if !ok {
		return nil, errBearerNone
	}
	if b.SkipHMAC && isHMACToken(token) {
		return nil, errBearerHMAC
	}
	if b.SkipOpaque && strings.Count(token, ".") != 2 {
		return nil, errBearerOpaque
	}
	if b.PassUnknown && !b.mayBeOurs(token) {
		return nil, fmt.Errorf("bearer: not a token of this issuer: %w", ErrNoCredentials)
	}
	id, err := b.Verify(token)
	if b.PassUnknown && errors.Is(err, chain.ErrUnknownKey) {
		return nil, fmt.Errorf("bearer: unknown kid: %w", ErrNoCredentials)
	}
	return id, err
}

// mayBeOurs reports whether token looks like a JWT naming the verifier's
// issuer (unverified: it only picks the authenticator).
func (b *BearerJWT) mayBeOurs(token string) bool {
	if _, ok := peekAlg(token); !ok {
		return false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > chain.DefaultMaxTokenSize {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return false
	}
	return c.Iss == b.Verifier.Issuer
}

// Verify checks token and returns its identity.
func (b *BearerJWT) Verify(token string) (*Identity, error) {
	var key [32]byte
	if b.Cache != nil {
		key = b.Cache.Key(token)
		if id, ok := b.Cache.Get(key); ok {
			// A key that left the JWKS takes its tokens with it.
			if _, known := b.Verifier.Keys.LookupKey(id.KeyID); known {
				return id, nil
			}
			b.Cache.Delete(key)
		}
	}
	claims, err := b.Verifier.Verify(token)
	if err != nil {
		return nil, fmt.Errorf("bearer: %w: %w", ErrInvalidCredentials, err)
	}
	id := identityOf(NameBearer, claims)
	id.KeyID = claims.KeyID
	if b.Cache != nil {
		b.Cache.Put(key, id)
	}
	return id, nil
}

// identityOf turns verified edge claims into an Identity. Grants are
// shared between identities (most tokens of a customer carry the same
// one), so that a cache of many tokens stays small.
func identityOf(name string, c *chain.EdgeClaims) *Identity {
	id := &Identity{
		Authenticator: name,
		User:          c.Subject,
		AOR:           c.SIP.AOR,
		Customer:      grants.internString(c.CID),
		Grant:         grants.intern(c.SIP),
		ExpiresAt:     c.ExpiresAt.Time,
	}
	if id.AOR == "" {
		id.AOR = c.Subject
	}
	return id
}

// grants interns SIP grants; Identity.AOR, not Grant.AOR, names the AOR.
var grants = &grantInterner{m: make(map[string]*chain.SIPGrant), strs: make(map[string]string)}

// maxInternedGrants bounds the interner; past it grants are not shared.
const maxInternedGrants = 10_000

type grantInterner struct {
	mu   sync.Mutex
	m    map[string]*chain.SIPGrant
	strs map[string]string
}

// internString returns the interned copy of a short, often repeated
// string such as a customer id, so that cached identities share it.
func (gi *grantInterner) internString(s string) string {
	gi.mu.Lock()
	defer gi.mu.Unlock()
	if p, ok := gi.strs[s]; ok {
		return p
	}
	if len(gi.strs) < maxInternedGrants {
		gi.strs[s] = s
	}
	return s
}

func (gi *grantInterner) intern(g chain.SIPGrant) *chain.SIPGrant {
	g.AOR = ""
	key, err := json.Marshal(g)
	if err != nil {
		return &g
	}
	gi.mu.Lock()
	defer gi.mu.Unlock()
	if p, ok := gi.m[string(key)]; ok {
		return p
	}
	if len(gi.m) >= maxInternedGrants {
		return &g
	}
	gi.m[string(key)] = &g
	return &g
}

// isHMACToken reports whether the (unverified) JWT header names an HS
// algorithm. It only routes the token to an authenticator; no key is
// chosen from it.
func isHMACToken(token string) bool {
	alg, ok := peekAlg(token)
	return ok && strings.HasPrefix(alg, "HS")
}

// peekAlg reads the alg of a JWT's unverified header.
func peekAlg(token string) (string, bool) {
	dot := strings.IndexByte(token, '.')
	if dot <= 0 || dot > 512 {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(token[:dot])
	if err != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return "", false
	}
	return h.Alg, true
}

var _ Authenticator = (*BearerJWT)(nil)
