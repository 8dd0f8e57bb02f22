package issuer_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
)

func TestIntrospectionAndRevocation(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	s2 := e.provision("other", nil)
	r := e.postJSON("/v1/admin/edges", map[string]any{"name": "sbc-1"}, admin())
	if r.status != http.StatusCreated {
		t.Fatalf("create edge: %d %s", r.status, r.body)
	}
	var edge issuer.NewEdgeClient
	r.json(t, &edge)
	e.saw(edge.Secret)
	introspect := func(t *testing.T, tok string) string {
		r := e.at(t).postForm("/v1/introspect", url.Values{"token": {tok}}, basic(edge.ID, edge.Secret))
		if r.status != http.StatusOK {
			t.Fatalf("introspect: %d %s", r.status, r.body)
		}
		return string(r.body)
	}

	tok := e.token(map[string]any{"assertion": e.assertion(s, "alice", nil)}).AccessToken

	t.Run("a fresh token is active with its claims", func(t *testing.T) {
		var in issuer.Introspection
		if err := json.Unmarshal([]byte(introspect(t, tok)), &in); err != nil {
			t.Fatal(err)
		}
		if !in.Active || in.Subject != "alice" || in.CID != "acme" || in.SIP == nil || in.SIP.AOR != "sip:alice@acme.trunk.example.net" {
			t.Errorf("introspection = %+v", in)
		}
	})

	t.Run("garbage is exactly inactive", func(t *testing.T) {
		if got := introspect(t, "garbage"); got != `{"active":false}` {
			t.Errorf("body = %s", got)
		}
	})

	t.Run("another customer cannot revoke the token", func(t *testing.T) {
		r := e.at(t).postForm("/v1/revoke", url.Values{"token": {tok}}, basic(s2.ID, s2.Secret))
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "unauthorized_client") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})

	t.Run("the customer revokes its token and it turns inactive", func(t *testing.T) {
		r := e.at(t).postForm("/v1/revoke", url.Values{"token": {tok}}, basic(s.ID, s.Secret))
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if got := introspect(t, tok); got != `{"active":false}` {
			t.Errorf("after revoke: %s", got)
		}
	})

	t.Run("the admin token and an edge client may revoke too", func(t *testing.T) {
		t1 := e.token(map[string]any{"assertion": e.assertion(s, "bob", nil)}).AccessToken
		t2 := e.token(map[string]any{"assertion": e.assertion(s, "bob", nil)}).AccessToken
		if r := e.at(t).postForm("/v1/revoke", url.Values{"token": {t1}}, admin()); r.status != http.StatusOK {
			t.Errorf("admin revoke: %d %s", r.status, r.body)
		}
		if r := e.at(t).postForm("/v1/revoke", url.Values{"token": {t2}}, basic(edge.ID, edge.Secret)); r.status != http.StatusOK {
			t.Errorf("edge revoke: %d %s", r.status, r.body)
		}
		if introspect(t, t1) != `{"active":false}` || introspect(t, t2) != `{"active":false}` {
			t.Error("revoked tokens still active")
		}
	})

	t.Run("an expired token is inactive", func(t *testing.T) {
		fresh := e.token(map[string]any{"assertion": e.assertion(s, "carol", nil)}).AccessToken
		e.clock.advance(time.Hour)
		defer e.clock.advance(-time.Hour)
		if got := introspect(t, fresh); got != `{"active":false}` {
			t.Errorf("expired: %s", got)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	jwks := func() chain.JWKS {
		var doc chain.JWKS
		e.do(http.MethodGet, "/.well-known/jwks.json", nil, nil).json(t, &doc)
		return doc
	}
	state := func(doc chain.JWKS) map[string]string {
		m := map[string]string{}
		for _, k := range doc.Keys {
			m[k.Kid] = k.Status
		}
		return m
	}
	kidOf := func(tok string) string {
		if _, err := e.verify(tok); err != nil {
			t.Fatal(err)
		}
		parts := strings.SplitN(tok, ".", 2)
		var hdr struct{ Kid string }
		b, _ := b64url(parts[0])
		json.Unmarshal(b, &hdr)
		return hdr.Kid
	}
	before := state(jwks())
	if len(before) != 2 {
		t.Fatalf("want an active and a next key published, got %v", before)
	}
	var next string
	for kid, st := range before {
		if st == "next" {
			next = kid
		}
	}
	old := e.token(map[string]any{"assertion": e.assertion(s, "alice", nil)}).AccessToken
	oldKid := kidOf(old)

	r := e.postJSON("/v1/admin/keys/rotate", map[string]any{}, admin())
	if r.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	after := state(jwks())
	if after[next] != "active" || after[oldKid] != "retired" || len(after) != 3 {
		t.Errorf("after rotation: %v (next was %s, old %s)", after, next, oldKid)
	}
	tok := e.token(map[string]any{"assertion": e.assertion(s, "alice", nil)}).AccessToken
	if kidOf(tok) != next {
		t.Errorf("new tokens signed by %s, want the key published before: %s", kidOf(tok), next)
	}
	if _, err := e.verify(old); err != nil {
		t.Errorf("a token of the retired key no longer verifies: %v", err)
	}

	e.clock.advance(5 * time.Minute)
	e.iss.Maintain(t.Context())
	if _, ok := state(jwks())[oldKid]; !ok {
		t.Error("retired key unpublished before its tokens expired")
	}
	e.clock.advance(10 * time.Minute)
	e.iss.Maintain(t.Context())
	if _, ok := state(jwks())[oldKid]; ok {
		t.Error("retired key still published after its last token expired")
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	e.provision("beta", nil)
	pre := func(origin string) response {
		return e.do(http.MethodOptions, "/v1/token", nil, map[string]string{"Origin": origin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	}
	t.Run("a customer's origin passes the preflight", func(t *testing.T) {
		r := pre("https://acme.example")
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://acme.example" ||
			r.header.Get("Vary") != "Origin" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%d %v", r.status, r.header)
		}
	})
	t.Run("an unknown origin fails the preflight", func(t *testing.T) {
		r := pre("https://evil.example")
		if r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%d %v", r.status, r.header)
		}
	})
	t.Run("the token request echoes the customer's origin", func(t *testing.T) {
		r := e.at(t).postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)}, map[string]string{"Origin": "https://acme.example"})
		if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "https://acme.example" {
			t.Errorf("%d %v", r.status, r.header)
		}
	})
	t.Run("another customer's origin is refused for this customer", func(t *testing.T) {
		r := e.at(t).postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)}, map[string]string{"Origin": "https://beta.example"})
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "unauthorized_client") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
}

func TestRateLimits(t *testing.T) {
	t.Run("per source address, with Retry-After", func(t *testing.T) {
		e := newEnv(t, func(c *issuer.Config) { c.RateLimit.PerSource = 1 })
		e.clock.freeze() // no refill between the requests, however slow they are
		s := e.provision("acme", nil)
		var last response
		for range 3 { // burst is 2
			last = e.postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)}, nil)
		}
		if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" || !strings.Contains(string(last.body), `"error":"rate_limited"`) {
			t.Errorf("%d %v %s", last.status, last.header, last.body)
		}
	})
	t.Run("per source address named by X-Forwarded-For only from a trusted proxy", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			trusted []string
			// statuses of three requests, each from its own forwarded address
			want int
		}{
			{name: "no proxy trusted: the TCP peer is the source, the header is ignored", want: http.StatusTooManyRequests},
			{name: "loopback trusted: each forwarded address has its own limit", trusted: []string{"127.0.0.0/8"}, want: http.StatusOK},
		} {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t, func(c *issuer.Config) { c.RateLimit.PerSource = 1; c.TrustedProxies = tt.trusted })
				e.clock.freeze()
				s := e.provision("acme", nil)
				var last response
				for i := range 3 { // burst is 2
					last = e.postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)},
						map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)})
				}
				if last.status != tt.want {
					t.Fatalf("third request: %d %s, want %d", last.status, last.body, tt.want)
				}
				if tt.trusted == nil {
					return
				}
				for range 2 { // the same forwarded address twice more: its third request
					last = e.postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)},
						map[string]string{"X-Forwarded-For": "203.0.113.1"})
				}
				if last.status != http.StatusTooManyRequests {
					t.Fatalf("one forwarded address, third request: %d %s", last.status, last.body)
				}
			})
		}
	})
	t.Run("per customer, and a customer may override", func(t *testing.T) {
		e := newEnv(t, func(c *issuer.Config) { c.RateLimit.PerCustomer = 100 })
		e.clock.freeze()
		s := e.provision("acme", map[string]any{"rate_limit": 1})
		other := e.provision("other", nil)
		var last response
		for range 3 {
			last = e.postJSON("/v1/token", map[string]any{"assertion": e.assertion(s, "alice", nil)}, nil)
		}
		if last.status != http.StatusTooManyRequests {
			t.Errorf("%d %s", last.status, last.body)
		}
		e.token(map[string]any{"assertion": e.assertion(other, "alice", nil)})
		m := string(e.do(http.MethodGet, "/metrics", nil, nil).body)
		if !strings.Contains(m, `trunkpass_issuer_rate_limited_total{scope="customer"} 1`) {
			t.Errorf("rate limit not counted")
		}
	})
}

func TestMetadataHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	e.token(map[string]any{"assertion": e.assertion(s, "alice", nil)})
	e.postJSON("/v1/token", map[string]any{"assertion": "x.y.z"}, nil)

	var md issuer.Metadata
	e.do(http.MethodGet, "/.well-known/oauth-authorization-server", nil, nil).json(t, &md)
	if md.Issuer != e.url || md.TokenEndpoint != e.url+"/oauth2/token" || md.JWKSURI != e.url+"/.well-known/jwks.json" ||
		md.IntrospectionEndpoint != e.url+"/v1/introspect" || md.RevocationEndpoint != e.url+"/v1/revoke" {
		t.Errorf("metadata = %+v", md)
	}
	if r := e.do(http.MethodGet, "/healthz", nil, nil); r.status != http.StatusOK {
		t.Errorf("healthz %d", r.status)
	}
	m := string(e.do(http.MethodGet, "/metrics", nil, nil).body)
	for _, want := range []string{
		`trunkpass_issuer_tokens_issued_total{form="assertion"} 1`,
		`trunkpass_issuer_token_failures_total{reason="malformed"} 1`,
		`trunkpass_issuer_jwks_keys 2`,
		`trunkpass_issuer_http_request_duration_seconds_bucket{code="200",route="/v1/token"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t)
	s := e.provision("acme", nil)
	t.Run("secrets are listed without their values", func(t *testing.T) {
		r := e.at(t).do(http.MethodGet, "/v1/admin/customers/acme/secrets", nil, admin())
		if r.status != http.StatusOK || strings.Contains(string(r.body), s.Secret) || !strings.Contains(string(r.body), s.ID) {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("a deleted customer is gone with its secrets", func(t *testing.T) {
		e := e.at(t)
		e.provision("gone", nil)
		if r := e.do(http.MethodDelete, "/v1/admin/customers/gone", nil, admin()); r.status != http.StatusNoContent {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r := e.do(http.MethodGet, "/v1/admin/customers/gone", nil, admin()); r.status != http.StatusNotFound {
			t.Errorf("%d", r.status)
		}
	})
	t.Run("the audit log records every change", func(t *testing.T) {
		var entries []issuer.AuditEntry
		e.at(t).do(http.MethodGet, "/v1/admin/audit", nil, admin()).json(t, &entries)
		var actions []string
		for _, a := range entries {
			actions = append(actions, a.Action)
			if !strings.HasPrefix(a.Actor, "admin@127.0.0.1") && a.Actor != "issuer" {
				t.Errorf("actor %q", a.Actor)
			}
		}
		want := "keys.create customer.create secret.create customer.create secret.create customer.delete"
		if strings.Join(actions, " ") != want {
			t.Errorf("actions = %v, want %s", actions, want)
		}
	})
}
