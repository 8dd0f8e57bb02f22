package issuer_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
)

// TestBadRequestsGetOAuthErrors sends every kind of bad request and checks
// each gets the right 4xx with an OAuth error JSON body, never a 5xx.
func TestBadRequestsGetOAuthErrors(t *testing.T) {
	e := newEnv(t)
	idp := newOIDCProvider(t)
	s := e.provision("acme", map[string]any{"idps": []map[string]any{{
		"issuer": idp.srv.URL, "audience": "acme-client", "domains": []string{"acme.example"}}}})
	e.provision("other", nil)

	// A secret whose window starts tomorrow, and one revoked.
	r := e.postJSON("/v1/admin/customers/acme/secrets", map[string]any{"not_before": e.clock.now().Add(24 * time.Hour).Format(time.RFC3339)}, admin())
	var future issuer.NewSecret
	r.json(t, &future)
	r = e.postJSON("/v1/admin/customers/acme/secrets", map[string]any{"not_before": e.clock.now().Add(-time.Hour).Unix()}, admin())
	var revoked issuer.NewSecret
	r.json(t, &revoked)
	e.saw(future.Secret, revoked.Secret)
	if r := e.do(http.MethodDelete, "/v1/admin/customers/acme/secrets/"+revoked.ID, nil, admin()); r.status != http.StatusOK {
		t.Fatalf("revoke secret: %d %s", r.status, r.body)
	}

	replayed := e.assertion(s, "alice", nil)
	e.token(map[string]any{"assertion": replayed})

	noneTok := func() string {
		c := jwt.MapClaims{"iss": "acme", "sub": "alice", "aud": e.url, "iat": e.clock.now().Unix(),
			"exp": e.clock.now().Add(time.Minute).Unix(), "jti": "n1"}
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return tok
	}()
	wrongKey := s
	wrongKey.Secret = "not-the-secret"
	legacyUser, legacyPass, _ := chain.MintEphemeral([]byte(s.Secret), "dave", e.clock.now().Add(time.Minute), chain.EphemeralFormat{})

	type tc struct {
		name   string
		method string
		path   string
		ctype  string
		body   string
		header map[string]string
		status int
		code   string
	}
	js := "application/json"
	form := "application/x-www-form-urlencoded"
	assert := func(tok string) string { return `{"assertion":"` + tok + `"}` }
	cases := []tc{
		{"malformed JSON is invalid_request", "POST", "/v1/token", js, `{"assertion":`, nil, 400, "invalid_request"},
		{"an unknown JSON field is invalid_request", "POST", "/v1/token", js, `{"assertion":"x","admin":true}`, nil, 400, "invalid_request"},
		{"trailing data after the JSON object is invalid_request", "POST", "/v1/token", js, `{"assertion":"x"} {}`, nil, 400, "invalid_request"},
		{"a 2 MiB body is refused as too large", "POST", "/v1/token", js, `{"assertion":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413, "invalid_request"},
		{"an empty request is invalid_request", "POST", "/v1/token", js, `{}`, nil, 400, "invalid_request"},
		{"an unsupported content type is invalid_request", "POST", "/v1/token", "text/plain", `assertion=x`, nil, 400, "invalid_request"},
		{"a garbage assertion is invalid_grant", "POST", "/v1/token", js, assert("not.a.jwt"), nil, 400, "invalid_grant"},
		{"an assertion for another audience is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(s, "alice", func(c *chain.AssertionClaims) {
			c.Audience = []string{"https://elsewhere.example"}
		})), nil, 400, "invalid_grant"},
		{"an expired assertion is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(s, "alice", func(c *chain.AssertionClaims) {
			c.IssuedAt = jwt.NewNumericDate(e.clock.now().Add(-10 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(e.clock.now().Add(-8 * time.Minute))
		})), nil, 400, "invalid_grant"},
		{"an assertion living longer than assertion_ttl is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(s, "alice", func(c *chain.AssertionClaims) {
			c.ExpiresAt = jwt.NewNumericDate(e.clock.now().Add(time.Hour))
		})), nil, 400, "invalid_grant"},
		{"an assertion without jti is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(s, "alice", func(c *chain.AssertionClaims) { c.ID = "" })), nil, 400, "invalid_grant"},
		{"a replayed jti is invalid_grant", "POST", "/v1/token", js, assert(replayed), nil, 400, "invalid_grant"},
		{"an assertion signed with the wrong secret is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(wrongKey, "alice", nil)), nil, 400, "invalid_grant"},
		{"an assertion from an unknown customer is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(s, "alice", func(c *chain.AssertionClaims) { c.Issuer = "nobody" })), nil, 400, "invalid_grant"},
		{"an assertion naming another customer's secret is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(s, "alice", func(c *chain.AssertionClaims) { c.Issuer = "other" })), nil, 400, "invalid_grant"},
		{"alg none is invalid_grant", "POST", "/v1/token", js, assert(noneTok), nil, 400, "invalid_grant"},
		{"a secret outside its window is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(future, "alice", nil)), nil, 400, "invalid_grant"},
		{"a revoked secret is invalid_grant", "POST", "/v1/token", js, assert(e.assertion(revoked, "alice", nil)), nil, 400, "invalid_grant"},
		{"a user name with @ is invalid_request", "POST", "/v1/token", js, assert(e.assertion(s, "alice@evil", nil)), nil, 400, "invalid_request"},
		{"a user name with a control character is invalid_request", "POST", "/v1/token", js, assert(e.assertion(s, "al\x01ice", nil)), nil, 400, "invalid_request"},
		{"grants that cannot be parsed are invalid_grant", "POST", "/v1/token", js, assert(e.assertion(s, "alice", func(c *chain.AssertionClaims) {
			c.Grants = &chain.SIPGrant{CIDR: []string{"not-a-cidr"}}
		})), nil, 400, "invalid_grant"},
		{"legacy with the wrong password is invalid_grant", "POST", "/v1/token", js, `{"customer":"acme","username":"` + legacyUser + `","password":"AAAA"}`, nil, 400, "invalid_grant"},
		{"legacy for an unknown customer is invalid_grant", "POST", "/v1/token", js, `{"customer":"nobody","username":"` + legacyUser + `","password":"` + legacyPass + `"}`, nil, 400, "invalid_grant"},
		{"legacy without a password is invalid_request", "POST", "/v1/token", js, `{"customer":"acme","username":"` + legacyUser + `"}`, nil, 400, "invalid_request"},
		{"server to server with the wrong secret is invalid_client", "POST", "/v1/token", js, `{"sub":"alice"}`, basic(s.ID, "wrong"), 401, "invalid_client"},
		{"server to server with an unknown secret id is invalid_client", "POST", "/v1/token", js, `{"sub":"alice"}`, basic("sk_nope", s.Secret), 401, "invalid_client"},
		{"server to server with a revoked secret is invalid_client", "POST", "/v1/token", js, `{"sub":"alice"}`, basic(revoked.ID, revoked.Secret), 401, "invalid_client"},
		{"server to server with a secret outside its window is invalid_client", "POST", "/v1/token", js, `{"sub":"alice"}`, basic(future.ID, future.Secret), 401, "invalid_client"},
		{"server to server without sub is invalid_request", "POST", "/v1/token", js, `{}`, basic(s.ID, s.Secret), 400, "invalid_request"},
		{"server to server with a negative ttl is invalid_request", "POST", "/v1/token", js, `{"sub":"a","ttl":-5}`, basic(s.ID, s.Secret), 400, "invalid_request"},
		{"malformed Basic credentials are invalid_client", "POST", "/v1/token", js, `{"sub":"alice"}`, map[string]string{"Authorization": "Basic !!!"}, 401, "invalid_client"},
		{"an id_token for another audience is invalid_grant", "POST", "/v1/token", js, `{"customer":"acme","id_token":"` + idp.idToken(t, e.clock.now(), jwt.MapClaims{"aud": "someone-else"}) + `"}`, nil, 400, "invalid_grant"},
		{"an expired id_token is invalid_grant", "POST", "/v1/token", js, `{"customer":"acme","id_token":"` + idp.idToken(t, e.clock.now(), jwt.MapClaims{"exp": e.clock.now().Add(-time.Hour).Unix(), "iat": e.clock.now().Add(-2 * time.Hour).Unix()}) + `"}`, nil, 400, "invalid_grant"},
		{"an id_token from a disallowed domain is invalid_grant", "POST", "/v1/token", js, `{"customer":"acme","id_token":"` + idp.idToken(t, e.clock.now(), jwt.MapClaims{"email": "mallory@evil.example"}) + `"}`, nil, 400, "invalid_grant"},
		{"an id_token with an unverified email is invalid_grant", "POST", "/v1/token", js, `{"customer":"acme","id_token":"` + idp.idToken(t, e.clock.now(), jwt.MapClaims{"email_verified": false}) + `"}`, nil, 400, "invalid_grant"},
		{"an id_token for a customer that does not trust the provider is invalid_grant", "POST", "/v1/token", js, `{"customer":"other","id_token":"` + idp.idToken(t, e.clock.now(), nil) + `"}`, nil, 400, "invalid_grant"},
		{"an unsupported grant type is unsupported_grant_type", "POST", "/oauth2/token", form, url.Values{"grant_type": {"password"}}.Encode(), nil, 400, "unsupported_grant_type"},
		{"jwt-bearer without an assertion is invalid_request", "POST", "/oauth2/token", form, url.Values{"grant_type": {issuer.GrantJWTBearer}}.Encode(), nil, 400, "invalid_request"},
		{"a repeated form parameter is invalid_request", "POST", "/oauth2/token", form, "grant_type=a&grant_type=b", nil, 400, "invalid_request"},
		{"a JSON body at /oauth2/token is invalid_request", "POST", "/oauth2/token", js, `{}`, nil, 400, "invalid_request"},
		{"the admin API without a token is refused", "GET", "/v1/admin/customers", "", "", nil, 401, "invalid_token"},
		{"the admin API with a wrong token is refused", "GET", "/v1/admin/customers", "", "", map[string]string{"Authorization": "Bearer wrong"}, 401, "invalid_token"},
		{"a duplicate customer is a conflict", "POST", "/v1/admin/customers", js, `{"id":"acme","domain":"acme.example"}`, admin(), 409, "conflict"},
		{"an invalid customer id is invalid_request", "POST", "/v1/admin/customers", js, `{"id":"Bad Id","domain":"x.example"}`, admin(), 400, "invalid_request"},
		{"a customer with a bad origin is invalid_request", "POST", "/v1/admin/customers", js, `{"id":"x","domain":"x.example","origins":["javascript:alert(1)"]}`, admin(), 400, "invalid_request"},
		{"an unknown customer is not found", "GET", "/v1/admin/customers/nobody", "", "", admin(), 404, "not_found"},
		{"a secret for an unknown customer is not found", "POST", "/v1/admin/customers/nobody/secrets", js, `{}`, admin(), 404, "not_found"},
		{"revoking an unknown secret is not found", "DELETE", "/v1/admin/customers/acme/secrets/sk_nope", "", "", admin(), 404, "not_found"},
		{"a window that ends before it starts is invalid_request", "POST", "/v1/admin/customers/acme/secrets", js, `{"not_before":100,"not_after":50}`, admin(), 400, "invalid_request"},
		{"introspection without client credentials is invalid_client", "POST", "/v1/introspect", form, "token=x", nil, 401, "invalid_client"},
		{"introspection with a customer secret is invalid_client", "POST", "/v1/introspect", form, "token=x", basic(s.ID, s.Secret), 401, "invalid_client"},
		{"revocation without credentials is invalid_client", "POST", "/v1/revoke", form, "token=x", nil, 401, "invalid_client"},
		{"an unknown path is not found", "GET", "/v2/nothing", "", "", nil, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.at(t)
			h := map[string]string{}
			if c.ctype != "" {
				h["Content-Type"] = c.ctype
			}
			for k, v := range c.header {
				h[k] = v
			}
			var body *bytes.Reader
			if c.body != "" {
				body = bytes.NewReader([]byte(c.body))
			}
			var r response
			if body != nil {
				r = e.do(c.method, c.path, body, h)
			} else {
				r = e.do(c.method, c.path, nil, h)
			}
			var oe struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			r.json(t, &oe)
			if r.status != c.status || oe.Error != c.code {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
			if r.status >= 500 {
				t.Errorf("5xx for bad input: %s", r.body)
			}
		})
	}
	_ = base64.StdEncoding
}

// The issuer's server refuses request headers over its 64 KiB limit before
// any handler runs (net/http's default would take a megabyte).
func TestOversizedRequestHeadersAreRefused(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", nil, map[string]string{"X-Padding": strings.Repeat("a", 32<<10)}); r.status != http.StatusOK {
		t.Fatalf("32 KiB of headers: status %d, want 200", r.status)
	}
	if r := e.do("GET", "/healthz", nil, map[string]string{"X-Padding": strings.Repeat("a", 80<<10)}); r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("80 KiB of headers: status %d, want 431", r.status)
	}
}
