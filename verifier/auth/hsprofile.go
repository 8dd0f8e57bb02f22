package auth

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/trunkpass/trunkpass/chain"
)

// NameHSProfile is the HSProfiles authenticator's name.
const NameHSProfile = "hs_profile"

// HSAlgorithms is the allow-list of HS profile tokens.
var HSAlgorithms = []string{"HS256"}

// Profile is an OpenSIPS auth_jwt style profile: a tag, the secrets that
// may sign its tokens (each with a validity window), and the data added as
// headers to the requests its holders send.
type Profile struct {
	// Tag is the value of the tag claim that selects the profile.
	Tag string
	// Secrets may verify the profile's tokens while valid at iat.
	Secrets []chain.Secret
	// Headers are the profile data, added to forwarded requests.
	Headers map[string]string
	// Domain, when set, makes the AOR sip:<sub>@<Domain>.
	Domain string
	// Grant restricts methods, destinations and sources; nil means the
	// methods of DefaultMethods and no other restriction.
	Grant *chain.SIPGrant
}

// HSProfiles authenticates HS256 JWTs in the OpenSIPS auth_jwt style, but
// checking what auth_jwt skips: the tag claim only names a profile, looked
// up by exact key; the signature is then checked with that profile's
// secrets valid at iat; exp, iat, nbf, aud (and iss when set) are required
// and checked; the lifetime is capped by MaxAge.
type HSProfiles struct {
	// TagClaim names the claim that selects the profile ("tag" when empty).
	TagClaim string
	// Profiles by tag.
	Profiles map[string]*Profile
	// Audience every token must name in aud.
	Audience string
	// Issuer, when set, must be the token's iss.
	Issuer string
	// MaxAge refuses tokens whose exp - iat is longer; zero means no bound.
	MaxAge time.Duration
	// Leeway tolerated on exp, nbf and iat.
	Leeway time.Duration
	// DefaultMethods is the grant's methods for profiles without a Grant.
	DefaultMethods []string
	// Cache remembers verified tokens; nil disables it.
	Cache *TokenCache
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Authenticate implements Authenticator. Tokens whose header does not name
// an HS algorithm are not its kind (ErrNoCredentials).
func (h *HSProfiles) Authenticate(_ context.Context, req *sip.Request, _ netip.AddrPort) (*Identity, error) {
	token, ok := BearerToken(req)
	if !ok || !isHMACToken(token) {
		return nil, errHSNone
	}
	return h.Verify(token)
}

// Verify checks an HS profile token.
func (h *HSProfiles) Verify(token string) (*Identity, error) {
	if len(token) > chain.DefaultMaxTokenSize {
		return nil, fmt.Errorf("hs profile: %w: %w", ErrInvalidCredentials, chain.ErrTooLarge)
	}
	var key [32]byte
	if h.Cache != nil {
		key = h.Cache.Key(token)
		if id, ok := h.Cache.Get(key); ok {
			return id, nil
		}
	}
	tagClaim := h.TagClaim
	if tagClaim == "" {
		tagClaim = "tag"
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(HSAlgorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(h.Leeway),
		jwt.WithTimeFunc(nowFunc(h.Now)),
	}
	if h.Audience != "" {
		opts = append(opts, jwt.WithAudience(h.Audience))
	}
	if h.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(h.Issuer))
	}
	claims := jwt.MapClaims{}
	var profile *Profile
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		tag, _ := claims[tagClaim].(string)
		p, ok := h.Profiles[tag] // exact look-up; the tag is not trusted yet
		if !ok || tag == "" {
			return nil, fmt.Errorf("profile: %w", chain.ErrUnknownKey)
		}
		iat, err := claims.GetIssuedAt()
		if err != nil || iat == nil {
			return nil, fmt.Errorf("iat: %w", chain.ErrMissingClaim)
		}
		var set jwt.VerificationKeySet
		for i := range p.Secrets {
			if p.Secrets[i].ValidAt(iat.Time) {
				set.Keys = append(set.Keys, p.Secrets[i].Value)
			}
		}
		if len(set.Keys) == 0 {
			return nil, fmt.Errorf("no secret valid at iat: %w", chain.ErrUnknownKey)
		}
		profile = p
		return set, nil
	})
	if err != nil {
		return nil, fmt.Errorf("hs profile: %w: %w", ErrInvalidCredentials, err)
	}
	sub, _ := claims.GetSubject()
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if sub == "" {
		return nil, fmt.Errorf("hs profile: sub: %w: %w", ErrInvalidCredentials, chain.ErrMissingClaim)
	}
	if life := exp.Sub(iat.Time); h.MaxAge > 0 && life > h.MaxAge {
		return nil, fmt.Errorf("hs profile: lives %s: %w: %w", life, ErrInvalidCredentials, chain.ErrLifetime)
	}
	g := chain.SIPGrant{Methods: slices.Clone(h.DefaultMethods)}
	if profile.Grant != nil {
		g = *profile.Grant
	}
	g.Headers = profile.Headers
	id := &Identity{
		Authenticator: NameHSProfile,
		User:          sub,
		AOR:           sub,
		Customer:      profile.Tag,
		Grant:         &g,
		ExpiresAt:     exp.Time,
	}
	if profile.Domain != "" {
		id.AOR = "sip:" + sub + "@" + profile.Domain
	}
	if h.Cache != nil {
		h.Cache.Put(key, id)
	}
	return id, nil
}

var _ Authenticator = (*HSProfiles)(nil)
