package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/chain"
)

// NameIntrospection is the Introspection authenticator's name.
const NameIntrospection = "introspection"

// Introspection authenticates Bearer tokens by asking an RFC 7662
// introspection endpoint, with HTTP Basic client credentials. Active
// answers are cached until the token's exp (never longer); inactive ones
// are not cached.
type Introspection struct {
	// URL of the introspection endpoint.
	URL string
	// ClientID and ClientSecret authenticate the edge (HTTP Basic).
	ClientID     string
	ClientSecret string
	// Audience, when set, must be among the answer's aud values.
	Audience string
	// Issuer, when set, must be the answer's iss (an answer without iss is
	// refused).
	Issuer string
	// MaxAge caps the cache lifetime of an answer (and refuses tokens
	// whose exp - iat is longer); zero means only exp bounds it.
	MaxAge time.Duration
	// Leeway tolerated on exp and nbf.
	Leeway time.Duration
	// DefaultMethods is the grant given when the answer carries no "sip"
	// member.
	DefaultMethods []string
	// Client makes the requests; a client with a 5 s timeout when nil.
	Client *http.Client
	// Cache remembers active answers; nil disables it.
	Cache *TokenCache
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// introspectionAnswer is an RFC 7662 response with trunkpass members.
type introspectionAnswer struct {
	Active bool            `json:"active"`
	Sub    string          `json:"sub"`
	Exp    int64           `json:"exp"`
	Iat    int64           `json:"iat"`
	Nbf    int64           `json:"nbf"`
	Iss    string          `json:"iss"`
	Aud    json.RawMessage `json:"aud"`
	CID    string          `json:"cid"`
	SIP    *chain.SIPGrant `json:"sip"`
}

// Authenticate implements Authenticator.
func (in *Introspection) Authenticate(ctx context.Context, req *sip.Request, _ netip.AddrPort) (*Identity, error) {
	token, ok := BearerToken(req)
	if !ok {
		return nil, errIntrospectionNone
	}
	return in.Verify(ctx, token)
}

// Verify introspects token.
func (in *Introspection) Verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > chain.DefaultMaxTokenSize {
		return nil, fmt.Errorf("introspection: %w: %w", ErrInvalidCredentials, chain.ErrTooLarge)
	}
	var key [32]byte
	if in.Cache != nil {
		key = in.Cache.Key(token)
		if id, ok := in.Cache.Get(key); ok {
			return id, nil
		}
	}
	a, err := in.ask(ctx, token)
	if err != nil {
		return nil, err
	}
	now := nowFunc(in.Now)()
	bad := func(why string, cause error) error {
		return fmt.Errorf("introspection: %s: %w: %w", why, ErrInvalidCredentials, cause)
	}
	switch {
	case !a.Active:
		return nil, bad("inactive", chain.ErrBadSignature)
	case a.Exp == 0:
		return nil, bad("no exp", chain.ErrMissingClaim)
	case !now.Before(time.Unix(a.Exp, 0).Add(in.Leeway)):
		return nil, bad("exp", chain.ErrExpired)
	case a.Nbf != 0 && now.Before(time.Unix(a.Nbf, 0).Add(-in.Leeway)):
		return nil, bad("nbf", chain.ErrNotYetValid)
	case a.Sub == "":
		return nil, bad("sub", chain.ErrMissingClaim)
	case in.Issuer != "" && a.Iss != in.Issuer:
		return nil, bad("iss", chain.ErrIssuer)
	case in.Audience != "" && !audContains(a.Aud, in.Audience):
		return nil, bad("aud", chain.ErrAudience)
	case in.MaxAge > 0 && a.Iat != 0 && time.Duration(a.Exp-a.Iat)*time.Second > in.MaxAge:
		return nil, bad("lifetime", chain.ErrLifetime)
	}
	g := chain.SIPGrant{Methods: slices.Clone(in.DefaultMethods)}
	if a.SIP != nil {
		if err := a.SIP.Validate(); err != nil {
			return nil, bad("grant", err)
		}
		g = *a.SIP
	}
	id := &Identity{
		Authenticator: NameIntrospection,
		User:          a.Sub,
		AOR:           g.AOR,
		Customer:      a.CID,
		Grant:         grants.intern(g),
		ExpiresAt:     time.Unix(a.Exp, 0),
	}
	if id.AOR == "" {
		id.AOR = a.Sub
	}
	if in.Cache != nil {
		cached := *id
		if in.MaxAge > 0 && now.Add(in.MaxAge).Before(cached.ExpiresAt) {
			cached.ExpiresAt = now.Add(in.MaxAge)
		}
		in.Cache.Put(key, &cached)
	}
	return id, nil
}

func (in *Introspection) ask(ctx context.Context, token string) (*introspectionAnswer, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection: %w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(in.ClientID, in.ClientSecret)
	client := in.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	res, err := client.Do(req)
	if err != nil {
		// The URL never contains the token; the error may name the URL.
		return nil, fmt.Errorf("introspection: %w: %v", ErrUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection: status %d: %w", res.StatusCode, ErrUnavailable)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocument))
	if err != nil {
		return nil, fmt.Errorf("introspection: %w: %v", ErrUnavailable, err)
	}
	var a introspectionAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("introspection: decode answer: %w", ErrUnavailable)
	}
	return &a, nil
}

// audContains reports whether an aud member (a string or a list) names aud.
func audContains(raw json.RawMessage, aud string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == aud
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return slices.Contains(many, aud)
	}
	return false
}

var _ Authenticator = (*Introspection)(nil)
