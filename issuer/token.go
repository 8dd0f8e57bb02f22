package issuer

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Form names the kind of credential a token request presents.
type Form string

// The four token request forms of SPEC §3.
const (
	FormAssertion Form = "assertion"
	FormLegacy    Form = "legacy"
	FormServer    Form = "server"
	FormOIDC      Form = "oidc"
)

// TokenRequest is a decoded token request, whatever its HTTP shape.
type TokenRequest struct {
	// Assertion is a customer assertion JWT.
	Assertion string
	// Customer names the customer (legacy and single sign-on forms).
	Customer string
	// Username and Password are the legacy ephemeral pair.
	Username, Password string
	// IDToken is an OpenID Connect id_token (single sign-on).
	IDToken string
	// ClientID and ClientSecret come from HTTP Basic: a secret id and the
	// secret (server to server).
	ClientID, ClientSecret string
	// Subject, Grants and TTL are what a server-to-server request asks for.
	Subject string
	Grants  *chain.SIPGrant
	TTL     time.Duration
	// Origin is the browser's Origin header, if any; it must be one of the
	// customer's origins.
	Origin string
}

// form decides which credential kind handles r.
func (r *TokenRequest) form() (Form, error) {
	switch {
	case r.ClientID != "":
		if r.Assertion != "" || r.IDToken != "" || r.Password != "" {
			return "", invalidRequest("client authentication goes with sub, grants and ttl only")
		}
		return FormServer, nil
	case r.Assertion != "":
		if r.IDToken != "" || r.Password != "" || r.Subject != "" || r.Grants != nil || r.TTL != 0 {
			return "", invalidRequest("an assertion carries its own sub, grants and ttl")
		}
		return FormAssertion, nil
	case r.IDToken != "":
		if r.Password != "" || r.Customer == "" {
			return "", invalidRequest("an id_token goes with customer")
		}
		return FormOIDC, nil
	case r.Username != "" || r.Password != "":
		if r.Customer == "" || r.Username == "" || r.Password == "" {
			return "", invalidRequest("the legacy form needs customer, username and password")
		}
		return FormLegacy, nil
	}
	return "", invalidRequest("no credential: send an assertion, an id_token, a legacy username and password, or HTTP Basic client credentials")
}

// principal is what a credential kind established.
type principal struct {
	customer *store.Customer
	user     string
	grants   *chain.SIPGrant
	ttl      time.Duration
	// jti, when set, must be used once (until jtiExp).
	jti    string
	jtiIat time.Time
	jtiExp time.Time
}

// credential is one kind of customer credential.
type credential interface {
	authenticate(ctx context.Context, st *state, r *TokenRequest) (*principal, error)
}

// TokenResponse is the answer of SPEC §3.
type TokenResponse struct {
	AccessToken     string      `json:"access_token"`
	TokenType       string      `json:"token_type"`
	ExpiresIn       int64       `json:"expires_in"`
	IssuedTokenType string      `json:"issued_token_type,omitempty"`
	SIP             SIPInfo     `json:"sip"`
	Ephemeral       *Ephemeral  `json:"ephemeral,omitempty"`
	ICEServers      []ICEServer `json:"ice_servers,omitempty"`
}

// SIPInfo tells the browser where and as whom to register.
type SIPInfo struct {
	URI       string   `json:"uri"`
	Realm     string   `json:"realm"`
	Websocket []string `json:"websocket"`
}

// Ephemeral are Digest credentials for edges that do not take tokens.
type Ephemeral struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	ExpiresAt int64  `json:"expires_at"`
}

// ICEServer is a WebRTC RTCIceServer entry with TURN REST credentials.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
}

// validUser reports whether u may be the user part of a SIP URI: RFC 3261
// unreserved and user-unreserved characters and %-escapes; no '@', ':',
// whitespace or control characters.
func validUser(u string) bool {
	if u == "" || len(u) > 128 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.!~*'()&=+$,;?/%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Issue checks a token request and returns edge credentials.
func (i *Issuer) Issue(ctx context.Context, r *TokenRequest) (*TokenResponse, error) {
	form, err := r.form()
	if err != nil {
		i.metrics.failure(err)
		return nil, err
	}
	resp, err := i.issue(ctx, form, r)
	if err != nil {
		i.metrics.failure(err)
		return nil, err
	}
	i.metrics.issuedFor(form).Inc()
	return resp, nil
}

func (i *Issuer) issue(ctx context.Context, form Form, r *TokenRequest) (*TokenResponse, error) {
	st := i.state.Load()
	p, err := i.kinds[form].authenticate(ctx, st, r)
	if err != nil {
		return nil, err
	}
	c := p.customer
	if !validUser(p.user) {
		return nil, invalidRequest("user name %q is not a SIP user part", p.user)
	}
	if r.Origin != "" && !slices.Contains(c.Origins, r.Origin) {
		return nil, fmt.Errorf("%w: origin %q is not one of customer %q's origins", ErrUnauthorizedClient, r.Origin, c.ID)
	}
	if p.ttl < 0 {
		return nil, invalidRequest("ttl must not be negative")
	}
	now := i.now()
	if err := i.limits.allowCustomer(c.ID, c.RateLimit, now); err != nil {
		return nil, err
	}
	if p.jti != "" {
		if err := i.useJTI(ctx, c.ID+"/"+p.jti, p.jtiIat, p.jtiExp); err != nil {
			return nil, err
		}
	}
	return i.mint(st, c, p, now)
}

func (i *Issuer) mint(st *state, c *store.Customer, p *principal, now time.Time) (*TokenResponse, error) {
	ttl := i.cfg.TokenTTL
	if m := time.Duration(c.MaxTTL); m > 0 && m < ttl {
		ttl = m
	}
	if p.ttl > 0 && p.ttl < ttl {
		ttl = p.ttl
	}
	ttl = ttl.Truncate(time.Second)
	if ttl < time.Second {
		ttl = time.Second
	}
	grant, err := chain.Narrow(c.SIP, p.grants)
	if err != nil {
		return nil, invalidRequest("grants: %v", err)
	}
	aor := "sip:" + p.user + "@" + c.Domain
	grant.AOR = aor
	now = now.Truncate(time.Second)
	exp := now.Add(ttl)
	claims := &chain.EdgeClaims{CID: c.ID, SIP: grant}
	claims.Issuer = i.cfg.URL
	claims.Subject = p.user
	claims.Audience = []string{i.cfg.Edge.Audience}
	claims.IssuedAt = jwtTime(now)
	claims.NotBefore = jwtTime(now)
	claims.ExpiresAt = jwtTime(exp)
	claims.ID = randomToken(16)
	if st.signer == nil {
		return nil, fmt.Errorf("no active signing key")
	}
	tok, err := chain.MintEdgeToken(st.signer, claims)
	if err != nil {
		return nil, err
	}
	ws := i.cfg.Edge.Websocket
	if ws == nil {
		ws = []string{}
	}
	resp := &TokenResponse{
		AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second),
		SIP: SIPInfo{URI: aor, Realm: i.cfg.Edge.Realm, Websocket: ws},
	}
	if len(i.cfg.EphemeralSecret) > 0 {
		u, pw, err := chain.MintEphemeral(i.cfg.EphemeralSecret, p.user+"@"+c.Domain, exp, i.ephemeral)
		if err != nil {
			return nil, err
		}
		resp.Ephemeral = &Ephemeral{Username: u, Password: pw, ExpiresAt: exp.Unix()}
	}
	if len(i.cfg.TURNSecret) > 0 && len(i.cfg.TURN.URLs) > 0 {
		u, pw, err := chain.MintEphemeral(i.cfg.TURNSecret, p.user, now.Add(i.cfg.TURN.TTL), chain.EphemeralFormat{Hash: chain.SHA1})
		if err != nil {
			return nil, err
		}
		resp.ICEServers = []ICEServer{{URLs: i.cfg.TURN.URLs, Username: u, Credential: pw}}
	}
	return resp, nil
}

// assertionKind: a customer assertion JWT (SPEC §2.2).
type assertionKind struct{ i *Issuer }

func (k assertionKind) authenticate(_ context.Context, st *state, r *TokenRequest) (*principal, error) {
	v := chain.AssertionVerifier{
		Keys: st, Audience: k.i.cfg.URL, MaxLifetime: k.i.cfg.AssertionTTL,
		Leeway: 30 * time.Second, Now: k.i.now,
	}
	a, err := v.Verify(r.Assertion)
	if err != nil {
		return nil, invalidGrant(err)
	}
	c, ok := st.customers[a.Customer]
	if !ok {
		return nil, invalidGrant(fmt.Errorf("customer %q: %w", a.Customer, chain.ErrUnknownKey))
	}
	return &principal{customer: c, user: a.Subject, grants: a.Grants, ttl: a.TTL, jti: a.JTI, jtiIat: a.IssuedAt, jtiExp: a.ExpiresAt.Add(time.Minute)}, nil
}

// legacyKind: the legacy ephemeral pair made with a customer secret.
type legacyKind struct{ i *Issuer }

func (k legacyKind) authenticate(_ context.Context, st *state, r *TokenRequest) (*principal, error) {
	c, ok := st.customers[r.Customer]
	if !ok {
		return nil, invalidGrant(fmt.Errorf("customer %q: %w", r.Customer, chain.ErrUnknownKey))
	}
	now := k.i.now()
	var secrets [][]byte
	for _, s := range st.byCustomer[c.ID] {
		if s.ValidAt(now) {
			secrets = append(secrets, s.Value)
		}
	}
	if len(secrets) == 0 {
		return nil, invalidGrant(fmt.Errorf("no secret of %q valid now: %w", c.ID, chain.ErrUnknownKey))
	}
	hash, _ := chain.ParseHash(c.LegacyHash)
	v := chain.EphemeralVerifier{Format: chain.EphemeralFormat{Hash: hash}, Secrets: secrets, MaxLifetime: k.i.cfg.AssertionTTL, Now: k.i.now}
	cred, err := v.Check(r.Username, r.Password)
	if err != nil {
		return nil, invalidGrant(err)
	}
	user := cred.User
	if at := strings.LastIndexByte(user, '@'); at >= 0 {
		if !strings.EqualFold(user[at+1:], c.Domain) {
			return nil, invalidGrant(fmt.Errorf("legacy username domain is not %q: %w", c.Domain, chain.ErrAudience))
		}
		user = user[:at]
	}
	return &principal{customer: c, user: user}, nil
}

// serverKind: a customer backend with HTTP Basic secret id and secret.
type serverKind struct{ i *Issuer }

func (k serverKind) authenticate(_ context.Context, st *state, r *TokenRequest) (*principal, error) {
	e, ok := st.secrets[r.ClientID]
	want := e.secret.Value
	if !ok {
		want = []byte("\x00 no such secret, compared anyway \x00")
	}
	match := subtle.ConstantTimeCompare(want, []byte(r.ClientSecret)) == 1
	if !ok || !match {
		return nil, invalidClient("secret id or secret wrong")
	}
	if !e.secret.ValidAt(k.i.now()) {
		return nil, invalidClient("secret %q is revoked or outside its validity window", r.ClientID)
	}
	c, ok := st.customers[e.secret.Customer]
	if !ok {
		return nil, invalidClient("secret %q has no customer", r.ClientID)
	}
	if r.Subject == "" {
		return nil, invalidRequest("sub is required")
	}
	if r.Grants != nil {
		if err := r.Grants.Validate(); err != nil {
			return nil, invalidRequest("grants: %v", err)
		}
	}
	return &principal{customer: c, user: r.Subject, grants: r.Grants, ttl: r.TTL}, nil
}

// oidcKind: an id_token from one of the customer's trusted providers.
type oidcKind struct{ i *Issuer }

func (k oidcKind) authenticate(ctx context.Context, st *state, r *TokenRequest) (*principal, error) {
	c, ok := st.customers[r.Customer]
	if !ok {
		return nil, invalidGrant(fmt.Errorf("customer %q: %w", r.Customer, chain.ErrUnknownKey))
	}
	user, err := k.i.oidc.verify(ctx, c.IdPs, r.IDToken)
	if err != nil {
		return nil, invalidGrant(err)
	}
	return &principal{customer: c, user: user}, nil
}
