package issuer_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
)

func TestTokenForms(t *testing.T) {
	e := newEnv(t)
	idp := newOIDCProvider(t)
	s := e.provision("acme", map[string]any{"idps": []map[string]any{{
		"issuer": idp.srv.URL, "audience": "acme-client", "domains": []string{"acme.example"}}}})

	root := e
	check := func(t *testing.T, tr issuer.TokenResponse, user string) *chain.EdgeClaims {
		t.Helper()
		e := root.at(t)
		c, err := e.verify(tr.AccessToken)
		if err != nil {
			t.Fatalf("edge token does not verify: %v", err)
		}
		aor := "sip:" + user + "@acme.trunk.example.net"
		if c.Subject != user || c.CID != "acme" || c.SIP.AOR != aor || tr.SIP.URI != aor || len(c.SIP.Methods) == 0 {
			t.Errorf("claims = %+v, sip = %+v", c, tr.SIP)
		}
		if tr.TokenType != "Bearer" || tr.ExpiresIn <= 0 || tr.ExpiresIn > 300 {
			t.Errorf("token_type %q expires_in %d (customer max_ttl 300)", tr.TokenType, tr.ExpiresIn)
		}
		if tr.Ephemeral == nil || !strings.HasSuffix(tr.Ephemeral.Username, ":"+user+"@acme.trunk.example.net") {
			t.Fatalf("ephemeral = %+v", tr.Ephemeral)
		}
		ev := chain.EphemeralVerifier{Secrets: [][]byte{[]byte("edge-shared-secret")}, Now: e.clock.now}
		if _, err := ev.Check(tr.Ephemeral.Username, tr.Ephemeral.Password); err != nil {
			t.Errorf("ephemeral credential does not verify: %v", err)
		}
		if len(tr.ICEServers) != 1 || tr.ICEServers[0].URLs[0] != "turn:127.0.0.1:3478" {
			t.Fatalf("ice_servers = %+v", tr.ICEServers)
		}
		tv := chain.EphemeralVerifier{Secrets: [][]byte{[]byte("turn-shared-secret")}, Now: e.clock.now}
		if cred, err := tv.Check(tr.ICEServers[0].Username, tr.ICEServers[0].Credential); err != nil || cred.User != user {
			t.Errorf("TURN credential: %+v %v", cred, err)
		}
		return c
	}

	t.Run("a customer assertion in JSON gets an edge token with the narrowed grant", func(t *testing.T) {
		e := root.at(t)
		tok := e.assertion(s, "alice", func(c *chain.AssertionClaims) {
			c.Grants = &chain.SIPGrant{Methods: []string{"REGISTER", "INVITE", "SUBSCRIBE"}}
			c.TTL = 60
		})
		tr := e.token(map[string]any{"assertion": tok})
		c := check(t, tr, "alice")
		if !slices.Equal(c.SIP.Methods, []string{"REGISTER", "INVITE"}) {
			t.Errorf("methods = %v, want the intersection", c.SIP.Methods)
		}
		if tr.ExpiresIn != 60 || c.SIP.Dial == nil || c.SIP.Dial.Allow[0] != "+44*" {
			t.Errorf("expires_in %d, dial %+v", tr.ExpiresIn, c.SIP.Dial)
		}
	})

	t.Run("a customer assertion as a form body works too", func(t *testing.T) {
		e := root.at(t)
		r := e.postForm("/v1/token", url.Values{"assertion": {e.assertion(s, "bob", nil)}}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})

	t.Run("the RFC 7523 jwt-bearer grant at /oauth2/token works", func(t *testing.T) {
		e := root.at(t)
		r := e.postForm("/oauth2/token", url.Values{"grant_type": {issuer.GrantJWTBearer}, "assertion": {e.assertion(s, "bob", nil)}}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var tr issuer.TokenResponse
		r.json(t, &tr)
		check(t, tr, "bob")
	})

	t.Run("the legacy expiry:user pair made with a customer secret works", func(t *testing.T) {
		e := root.at(t)
		u, p, _ := chain.MintEphemeral([]byte(s.Secret), "dave", e.clock.now().Add(time.Minute), chain.EphemeralFormat{})
		check(t, e.token(map[string]any{"customer": "acme", "username": u, "password": p}), "dave")
		u, p, _ = chain.MintEphemeral([]byte(s.Secret), "dave@acme.trunk.example.net", e.clock.now().Add(time.Minute), chain.EphemeralFormat{})
		check(t, e.token(map[string]any{"customer": "acme", "username": u, "password": p}), "dave")
	})

	t.Run("a backend with HTTP Basic secret id and secret asks for sub, grants and ttl", func(t *testing.T) {
		e := root.at(t)
		r := e.postJSON("/v1/token", map[string]any{"sub": "erin", "ttl": 30,
			"grants": map[string]any{"methods": []string{"INVITE"}, "cidr": []string{"127.0.0.0/8"}}}, basic(s.ID, s.Secret))
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var tr issuer.TokenResponse
		r.json(t, &tr)
		c := check(t, tr, "erin")
		if tr.ExpiresIn != 30 || !slices.Equal(c.SIP.Methods, []string{"INVITE"}) || !slices.Equal(c.SIP.CIDR, []string{"127.0.0.0/8"}) {
			t.Errorf("expires_in %d, grant %+v", tr.ExpiresIn, c.SIP)
		}
	})

	t.Run("an id_token from a trusted provider signs the visitor on by email", func(t *testing.T) {
		e := root.at(t)
		idt := idp.idToken(t, e.clock.now(), nil)
		check(t, e.token(map[string]any{"customer": "acme", "id_token": idt}), "carol")
	})

	t.Run("the RFC 8693 token exchange of an id_token works", func(t *testing.T) {
		e := root.at(t)
		r := e.postForm("/oauth2/token", url.Values{"grant_type": {issuer.GrantTokenExchange}, "customer": {"acme"},
			"subject_token_type": {issuer.TokenTypeIDToken}, "subject_token": {idp.idToken(t, e.clock.now(), nil)}}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var tr issuer.TokenResponse
		r.json(t, &tr)
		if tr.IssuedTokenType != issuer.TokenTypeAccess {
			t.Errorf("issued_token_type = %q", tr.IssuedTokenType)
		}
		check(t, tr, "carol")
	})

	t.Run("a provisioning change is seen by the next token at once", func(t *testing.T) {
		e := root.at(t)
		r := e.do(http.MethodPatch, "/v1/admin/customers/acme", strings.NewReader(`{"sip":{"methods":["MESSAGE"]},"max_ttl":"2m"}`), admin())
		if r.status != http.StatusOK {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
		tr := e.token(map[string]any{"assertion": e.assertion(s, "alice", nil)})
		c, _ := e.verify(tr.AccessToken)
		if !slices.Equal(c.SIP.Methods, []string{"MESSAGE"}) || tr.ExpiresIn != 120 {
			t.Errorf("methods %v expires_in %d", c.SIP.Methods, tr.ExpiresIn)
		}
	})
}

func TestEphemeralAndTURNAreOmittedWithoutSecrets(t *testing.T) {
	e := newEnv(t, func(c *issuer.Config) { c.EphemeralSecret, c.TURNSecret = nil, nil })
	s := e.provision("acme", nil)
	r := e.postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)}, nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), "ephemeral") || strings.Contains(string(r.body), "ice_servers") {
		t.Errorf("%d %s", r.status, r.body)
	}
}

// TestTokenAnswerHeaders checks the headers of a token answer, which the
// issuer sets from shared values and a Date formatted once a second.
func TestTokenAnswerHeaders(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	for i := range 3 { // the second and third answers may reuse the first's Date
		before := time.Now().Truncate(time.Second)
		r := e.postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)}, nil)
		after := time.Now()
		if r.status != http.StatusOK {
			t.Fatalf("answer %d: %d %s", i, r.status, r.body)
		}
		want := map[string]string{
			"Cache-Control": "no-store",
			"Pragma":        "no-cache",
			"Content-Type":  "application/json; charset=utf-8",
			"Vary":          "Origin",
		}
		for name, v := range want {
			if got := r.header.Values(name); len(got) != 1 || got[0] != v {
				t.Errorf("answer %d: %s = %q, want %q", i, name, got, v)
			}
		}
		dates := r.header.Values("Date")
		if len(dates) != 1 {
			t.Fatalf("answer %d: Date = %q", i, dates)
		}
		d, err := time.Parse(http.TimeFormat, dates[0])
		if err != nil || d.Before(before) || d.After(after) {
			t.Errorf("answer %d: Date %q (%v) not between %v and %v", i, dates[0], err, before, after)
		}
	}
}

func TestJTIIsAcceptedOnce(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	tok := e.assertion(s, "alice", nil)
	e.token(map[string]any{"assertion": tok})
	r := e.postJSON("/v1/token", map[string]any{"assertion": tok}, nil)
	var oe struct{ Error, ErrorDescription string }
	r.json(t, &oe)
	if r.status != http.StatusBadRequest || oe.Error != "invalid_grant" {
		t.Errorf("replay: %d %s", r.status, r.body)
	}
	// Other customers' jti values are their own.
	s2 := e.provision("beta", nil)
	tok2 := e.assertion(s2, "alice", func(c *chain.AssertionClaims) {
		p, _, _ := jwt.NewParser().ParseUnverified(tok, &chain.AssertionClaims{})
		c.ID = p.Claims.(*chain.AssertionClaims).ID
	})
	e.token(map[string]any{"assertion": tok2})
}
