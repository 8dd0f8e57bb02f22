package customersite_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	customersite "github.com/trunkpass/trunkpass/examples/customer-site"
)

const (
	issuerURL = "http://127.0.0.1:8080"
	secretVal = "s3cr3t-value-never-shown-0123456789"
)

func baseOptions() customersite.Options {
	return customersite.Options{
		CustomerID: "demo",
		SecretID:   "sec-1",
		Secret:     []byte(secretVal),
		IssuerURL:  issuerURL,
	}
}

// client is a browser with a cookie jar against a test server.
type client struct {
	t   *testing.T
	srv *httptest.Server
	hc  *http.Client
}

func newClient(t *testing.T, opts customersite.Options) *client {
	t.Helper()
	site, err := customersite.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &client{t: t, srv: srv, hc: &http.Client{Jar: jar}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path, contentType, body string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) login(user string) response {
	c.t.Helper()
	return c.do("POST", "/login", "application/json", `{"user":"`+user+`"}`)
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

func TestCredentialsNeedLogin(t *testing.T) {
	for _, path := range []string{"/api/assertion", "/api/ephemeral"} {
		t.Run(path+" without a session is refused with 401", func(t *testing.T) {
			c := newClient(t, baseOptions())
			r := c.do("POST", path, "", "")
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401: %s", r.status, r.body)
			}
			if e := decode[map[string]string](t, r); e["error"] != "login_required" {
				t.Errorf("error = %q, want login_required", e["error"])
			}
		})
	}
}

func TestLoginRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		want                    int
	}{
		{"malformed JSON is refused", "application/json", `{"user":`, http.StatusBadRequest},
		{"an empty user is refused", "application/json", `{"user":""}`, http.StatusBadRequest},
		{"a user with SIP syntax in it is refused", "application/json", `{"user":"a@b;x=y"}`, http.StatusBadRequest},
		{"a user longer than 64 characters is refused", "application/json", `{"user":"` + strings.Repeat("a", 65) + `"}`, http.StatusBadRequest},
		{"unknown fields are refused", "application/json", `{"user":"alice","admin":true}`, http.StatusBadRequest},
		{"an oversize body is refused", "application/json", `{"user":"` + strings.Repeat("a", 5000) + `"}`, http.StatusBadRequest},
		{"an unknown content type is refused", "text/plain", `alice`, http.StatusBadRequest},
		{"a form login is accepted", "application/x-www-form-urlencoded", `user=alice`, http.StatusOK},
		{"a JSON login is accepted", "application/json", `{"user":"bob.smith-2"}`, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, baseOptions())
			r := c.do("POST", "/login", tt.contentType, tt.body)
			if r.status != tt.want {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.want, r.body)
			}
			if r.status != http.StatusOK && !strings.Contains(r.body, "error_description") {
				t.Errorf("error body %q lacks error_description", r.body)
			}
		})
	}
}

func TestAssertionVerifiesAgainstTheSecret(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	opts := baseOptions()
	opts.Now = func() time.Time { return now }
	c := newClient(t, opts)
	if r := c.login("alice"); r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	first := decode[customersite.AssertionResponse](t, c.do("POST", "/api/assertion", "", ""))
	second := decode[customersite.AssertionResponse](t, c.do("POST", "/api/assertion", "", ""))
	if first.Issuer != issuerURL || first.ExpiresIn != 60 {
		t.Errorf("response = %+v, want issuer %s and expires_in 60", first, issuerURL)
	}
	v := &chain.AssertionVerifier{
		Keys:     chain.StaticKeyring{{ID: "sec-1", Customer: "demo", Value: []byte(secretVal)}},
		Audience: issuerURL,
		Now:      func() time.Time { return now.Add(30 * time.Second) },
	}
	a, err := v.Verify(first.Assertion)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if a.Customer != "demo" || a.Subject != "alice" || a.SecretID != "sec-1" || a.JTI == "" {
		t.Errorf("assertion = %+v, want customer demo, subject alice, secret sec-1 and a jti", a)
	}
	if life := a.ExpiresAt.Sub(a.IssuedAt); life != 60*time.Second {
		t.Errorf("lifetime = %s, want 60s", life)
	}
	b, err := v.Verify(second.Assertion)
	if err != nil {
		t.Fatalf("Verify second: %v", err)
	}
	if a.JTI == b.JTI {
		t.Errorf("two assertions share jti %q", a.JTI)
	}

	t.Run("it does not verify with another secret", func(t *testing.T) {
		other := *v
		other.Keys = chain.StaticKeyring{{ID: "sec-1", Customer: "demo", Value: []byte("another secret")}}
		if _, err := other.Verify(first.Assertion); !errors.Is(err, chain.ErrBadSignature) {
			t.Errorf("Verify with another secret = %v, want ErrBadSignature", err)
		}
	})
	t.Run("it has expired a minute later", func(t *testing.T) {
		late := *v
		late.Now = func() time.Time { return now.Add(61 * time.Second) }
		if _, err := late.Verify(first.Assertion); !errors.Is(err, chain.ErrExpired) {
			t.Errorf("Verify a minute later = %v, want ErrExpired", err)
		}
	})
}

func TestEphemeralVerifiesAgainstTheSecret(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	opts := baseOptions()
	opts.Now = func() time.Time { return now }
	c := newClient(t, opts)
	c.login("alice")
	r := c.do("POST", "/api/ephemeral", "", "")
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	e := decode[customersite.EphemeralResponse](t, r)
	if e.Customer != "demo" || e.Issuer != issuerURL || e.ExpiresAt != now.Unix()+60 {
		t.Errorf("response = %+v", e)
	}
	v := &chain.EphemeralVerifier{Secrets: [][]byte{[]byte(secretVal)}, Now: func() time.Time { return now }}
	cred, err := v.Check(e.Username, e.Password)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if cred.User != "alice" || !cred.Expiry.Equal(now.Add(60*time.Second)) {
		t.Errorf("credential = %+v, want alice until +60s", cred)
	}
	if want := "1800000060:alice"; e.Username != want {
		t.Errorf("username = %q, want %q", e.Username, want)
	}
}

func TestSessionCookie(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := now
	opts := baseOptions()
	opts.Now = func() time.Time { return clock }
	c := newClient(t, opts)
	r := c.login("alice")
	var cookie *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == customersite.SessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie = %+v, want HttpOnly SameSite=Lax", cookie)
	}
	if me := decode[map[string]string](t, c.do("GET", "/api/me", "", "")); me["user"] != "alice" {
		t.Errorf("/api/me = %v, want alice", me)
	}

	forge := func(value string) int {
		req, _ := http.NewRequest("POST", c.srv.URL+"/api/assertion", nil)
		req.AddCookie(&http.Cookie{Name: customersite.SessionCookie, Value: value})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	parts := strings.Split(cookie.Value, ".")
	tests := []struct {
		name  string
		value string
		want  int
	}{
		{"the genuine cookie is accepted", cookie.Value, http.StatusOK},
		{"a cookie naming another user is refused", base64.RawURLEncoding.EncodeToString([]byte("mallory")) + "." + parts[1] + "." + parts[2], http.StatusUnauthorized},
		{"a cookie with a later expiry is refused", parts[0] + ".9999999999." + parts[2], http.StatusUnauthorized},
		{"a cookie without a signature is refused", parts[0] + "." + parts[1], http.StatusUnauthorized},
		{"garbage is refused", "%%%", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := forge(tt.value); got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("the cookie is refused once it has expired", func(t *testing.T) {
		clock = now.Add(customersite.DefaultSessionTTL)
		defer func() { clock = now }()
		if got := forge(cookie.Value); got != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", got)
		}
	})
	t.Run("logout ends the session", func(t *testing.T) {
		c.do("POST", "/logout", "", "")
		if r := c.do("POST", "/api/assertion", "", ""); r.status != http.StatusUnauthorized {
			t.Errorf("assertion after logout: status %d, want 401", r.status)
		}
	})
}

func TestSecretNeverInResponses(t *testing.T) {
	c := newClient(t, baseOptions())
	c.login("alice")
	forms := []string{secretVal, base64.StdEncoding.EncodeToString([]byte(secretVal)), base64.RawURLEncoding.EncodeToString([]byte(secretVal))}
	for _, rq := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/legacy"}, {"GET", "/static/app.js"}, {"GET", "/api/config"},
		{"GET", "/api/me"}, {"POST", "/api/assertion"}, {"POST", "/api/ephemeral"}, {"POST", "/login"},
	} {
		t.Run(rq.method+" "+rq.path+" does not show the secret", func(t *testing.T) {
			r := c.do(rq.method, rq.path, "", "")
			all := r.body
			for k, v := range r.header {
				all += k + ": " + strings.Join(v, ",") + "\n"
			}
			for _, f := range forms {
				if strings.Contains(all, f) {
					t.Fatalf("response contains the secret (%q)", f)
				}
			}
		})
	}
}

func TestStaticFiles(t *testing.T) {
	assets := fstest.MapFS{
		"index.html":  {Data: []byte("<!doctype html><title>jwt</title>")},
		"legacy.html": {Data: []byte("<!doctype html><title>legacy</title>")},
		"app.js":      {Data: []byte("'use strict';")},
		"style.css":   {Data: []byte("body{}")},
	}
	bundle := filepath.Join(t.TempDir(), "jssip.min.js")
	if err := os.WriteFile(bundle, []byte("var JsSIP={};"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		jssipPath string
		assets    fstest.MapFS
		path      string
		status    int
		ctype     string
		contains  string
	}{
		{"the page is served at /", "", assets, "/", 200, "text/html", "<title>jwt</title>"},
		{"the legacy page is served at /legacy", "", assets, "/legacy", 200, "text/html", "<title>legacy</title>"},
		{"app.js is served as JavaScript", "", assets, "/static/app.js", 200, "javascript", "use strict"},
		{"style.css is served as CSS", "", assets, "/static/style.css", 200, "text/css", "body{}"},
		{"the JsSIP bundle is served from disk when built", bundle, assets, "/static/jssip.min.js", 200, "javascript", "var JsSIP"},
		{"the embedded JsSIP bundle is served when the disk has none", filepath.Join(t.TempDir(), "none.js"),
			fstest.MapFS{"jssip.min.js": {Data: []byte("var JsSIP={embedded:1};")}}, "/static/jssip.min.js", 200, "javascript", "embedded"},
		{"a missing JsSIP bundle says how to build it", filepath.Join(t.TempDir(), "none.js"), assets, "/static/jssip.min.js", 404, "text/plain", "npm ci && npm run build:jssip"},
		{"an unknown file is 404", "", assets, "/static/nope.js", 404, "", ""},
		{"pages are not served under /static", "", assets, "/static/index.html", 404, "", ""},
		{"path traversal is 404", "", assets, "/static/..%2f..%2fsite.go", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions()
			opts.Assets = tt.assets
			opts.JSSIPPath = tt.jssipPath
			r := newClient(t, opts).do("GET", tt.path, "", "")
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if !strings.Contains(r.header.Get("Content-Type"), tt.ctype) {
				t.Errorf("content type = %q, want %q", r.header.Get("Content-Type"), tt.ctype)
			}
			if !strings.Contains(r.body, tt.contains) {
				t.Errorf("body %q lacks %q", r.body, tt.contains)
			}
		})
	}
	t.Run("the embedded pages carry the ids browser tests read", func(t *testing.T) {
		c := newClient(t, baseOptions())
		for _, page := range []string{"/", "/legacy"} {
			r := c.do("GET", page, "", "")
			if r.status != 200 || !strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Fatalf("GET %s: %d, CSP %q", page, r.status, r.header.Get("Content-Security-Policy"))
			}
			for _, id := range []string{`id="status"`, `id="call-state"`, `id="rtp-in"`, `id="rtp-out"`, `src="/static/jssip.min.js"`, `src="/static/app.js"`} {
				if !strings.Contains(r.body, id) {
					t.Errorf("GET %s lacks %s", page, id)
				}
			}
		}
	})
}

func TestConfig(t *testing.T) {
	opts := baseOptions()
	opts.IssuerURL = issuerURL + "/"
	opts.EchoURI = "sip:echo@trunk.example.net"
	c := newClient(t, opts)
	got := decode[map[string]string](t, c.do("GET", "/api/config", "", ""))
	want := map[string]string{"issuer": issuerURL, "customer": "demo", "echo_uri": "sip:echo@trunk.example.net"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("config[%q] = %q, want %q", k, got[k], v)
		}
	}
	if r := c.do("GET", "/api/assertion", "", ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/assertion: %d, want 405", r.status)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*customersite.Options)
	}{
		{"a missing customer id is refused", func(o *customersite.Options) { o.CustomerID = "" }},
		{"a missing secret is refused", func(o *customersite.Options) { o.Secret = nil }},
		{"a missing issuer URL is refused", func(o *customersite.Options) { o.IssuerURL = "" }},
		{"an issuer URL without scheme is refused", func(o *customersite.Options) { o.IssuerURL = "127.0.0.1:8080" }},
		{"a credential lifetime above the assertion limit is refused", func(o *customersite.Options) { o.CredentialTTL = time.Hour }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := baseOptions()
			tt.modify(&o)
			if _, err := customersite.New(o); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}
