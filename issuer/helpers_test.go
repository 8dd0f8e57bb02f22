package issuer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
	"github.com/trunkpass/trunkpass/issuer"
)

// clock is a test clock that can be moved forward, and stopped.
type clock struct {
	offset atomic.Int64
	frozen atomic.Int64 // Unix nanoseconds; 0 means running
}

func (c *clock) now() time.Time {
	if f := c.frozen.Load(); f != 0 {
		return time.Unix(0, f).Add(time.Duration(c.offset.Load()))
	}
	return time.Now().Add(time.Duration(c.offset.Load()))
}
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) freeze()                 { c.frozen.Store(time.Now().UnixNano()) }

const adminToken = "test-admin-token-0123456789abcdef"

// env is an issuer served on 127.0.0.1 with a bolt store in a temp dir.
type env struct {
	t     testing.TB
	iss   *issuer.Issuer
	srv   *httptest.Server
	url   string
	clock *clock
	logs  *testpeer.SyncBuffer
	cfg   issuer.Config
	// seen collects every secret and token the test handled, for the log check.
	seen *[]string
}

// at returns the env reporting to t (a subtest).
func (e *env) at(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func (e *env) saw(s ...string) { *e.seen = append(*e.seen, s...) }

func testConfig(t testing.TB) issuer.Config {
	cfg := issuer.DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.AdminToken = []byte(adminToken)
	cfg.MasterKey = bytes.Repeat([]byte{7}, 32)
	cfg.EphemeralSecret = []byte("edge-shared-secret")
	cfg.TURNSecret = []byte("turn-shared-secret")
	cfg.TURN.URLs = []string{"turn:127.0.0.1:3478"}
	cfg.RateLimit = issuer.RateLimitConfig{}
	return cfg
}

func newEnv(t *testing.T, mutate ...func(*issuer.Config)) *env {
	t.Helper()
	return newEnvWith(t, nil, mutate...)
}

// newEnvWith builds an env for a test or benchmark tb.
func newEnvWith(tb testing.TB, opt issuer.Option, mutate ...func(*issuer.Config)) *env {
	tb.Helper()
	cfg := testConfig(tb)
	for _, m := range mutate {
		m(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.URL = "http://" + ln.Addr().String()
	e := &env{t: tb, clock: &clock{}, logs: &testpeer.SyncBuffer{}, cfg: cfg, seen: new([]string)}
	opts := []issuer.Option{issuer.WithClock(e.clock.now), issuer.WithLogger(zerolog.New(e.logs))}
	if opt != nil {
		opts = append(opts, opt)
	}
	e.iss, err = issuer.New(cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(e.iss.Handler())
	e.srv.Config = e.iss.Server() // the binary's timeouts and header limit
	e.srv.Listener.Close()
	e.srv.Listener = ln
	e.srv.Start()
	e.url = cfg.URL
	tb.Cleanup(func() {
		e.srv.Close()
		if err := e.iss.Close(); err != nil {
			tb.Error(err)
		}
		e.checkLogs(tb)
	})
	return e
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (e *env) do(method, path string, body io.Reader, header map[string]string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) postJSON(path string, v any, header map[string]string) response {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	h := map[string]string{"Content-Type": "application/json"}
	for k, val := range header {
		h[k] = val
	}
	return e.do(http.MethodPost, path, bytes.NewReader(b), h)
}

func (e *env) postForm(path string, v url.Values, header map[string]string) response {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, val := range header {
		h[k] = val
	}
	return e.do(http.MethodPost, path, strings.NewReader(v.Encode()), h)
}

func admin() map[string]string { return map[string]string{"Authorization": "Bearer " + adminToken} }

func basic(id, secret string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
}

// provision creates customer id with one secret, over HTTP.
func (e *env) provision(id string, extra map[string]any) issuer.NewSecret {
	e.t.Helper()
	c := map[string]any{"id": id, "name": "Customer " + id, "domain": id + ".trunk.example.net",
		"origins": []string{"https://" + id + ".example"}, "max_ttl": 300,
		"sip": map[string]any{"methods": []string{"REGISTER", "INVITE", "MESSAGE"}, "dial": map[string]any{"allow": []string{"+44*"}}}}
	for k, v := range extra {
		c[k] = v
	}
	if r := e.postJSON("/v1/admin/customers", c, admin()); r.status != http.StatusCreated {
		e.t.Fatalf("create customer: %d %s", r.status, r.body)
	}
	r := e.postJSON("/v1/admin/customers/"+id+"/secrets", map[string]any{}, admin())
	if r.status != http.StatusCreated {
		e.t.Fatalf("create secret: %d %s", r.status, r.body)
	}
	var s issuer.NewSecret
	r.json(e.t, &s)
	e.saw(s.Secret)
	return s
}

func secretOf(s issuer.NewSecret) chain.Secret {
	return chain.Secret{ID: s.ID, Customer: s.Customer, Value: []byte(s.Secret)}
}

// assertion mints a customer assertion; change edits the claims first.
func (e *env) assertion(s issuer.NewSecret, sub string, change func(*chain.AssertionClaims)) string {
	e.t.Helper()
	now := e.clock.now()
	claims := &chain.AssertionClaims{}
	claims.Issuer = s.Customer
	claims.Subject = sub
	claims.Audience = []string{e.url}
	claims.IssuedAt = jwt.NewNumericDate(now)
	claims.ExpiresAt = jwt.NewNumericDate(now.Add(2 * time.Minute))
	claims.ID = rand.Text()
	if change != nil {
		change(claims)
	}
	tok, err := chain.MintAssertion(secretOf(s), claims, "HS256", false)
	if err != nil {
		e.t.Fatal(err)
	}
	e.saw(tok)
	return tok
}

// token exchanges an assertion and fails the test unless it gets 200.
func (e *env) token(body any) issuer.TokenResponse {
	e.t.Helper()
	r := e.postJSON("/v1/token", body, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tr issuer.TokenResponse
	r.json(e.t, &tr)
	e.saw(tr.AccessToken)
	if tr.Ephemeral != nil {
		e.saw(tr.Ephemeral.Password)
	}
	return tr
}

// verify checks an edge token against the served JWKS.
func (e *env) verify(tok string) (*chain.EdgeClaims, error) {
	e.t.Helper()
	r := e.do(http.MethodGet, "/.well-known/jwks.json", nil, nil)
	keys, err := chain.ParseJWKS(r.body)
	if err != nil {
		e.t.Fatal(err)
	}
	v := chain.EdgeVerifier{Keys: keys, Issuer: e.url, Audience: e.cfg.Edge.Audience, Now: e.clock.now}
	return v.Verify(tok)
}

// oidcProvider is an OpenID Connect provider stand-in on 127.0.0.1.
type oidcProvider struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
}

func newOIDCProvider(t *testing.T) *oidcProvider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{key: key, kid: "idp-key-1"}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		j, _ := chain.PublicJWK(&p.key.PublicKey, "RS256", p.kid)
		j.Alg = "" // many providers omit alg; the issuer infers RS256 for RSA keys
		json.NewEncoder(w).Encode(chain.JWKS{Keys: []chain.JWK{j}})
	})
	t.Cleanup(p.srv.Close)
	return p
}

func (p *oidcProvider) idToken(t *testing.T, now time.Time, claims jwt.MapClaims) string {
	base := jwt.MapClaims{"iss": p.srv.URL, "aud": "acme-client", "sub": "1234", "email": "carol@acme.example",
		"email_verified": true, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, base)
	tok.Header["kid"] = p.kid
	s, err := tok.SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var _ = context.Background

func b64url(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// checkLogs fails t if a secret or token the test handled is in the logs.
func (e *env) checkLogs(t testing.TB) {
	logs := e.logs.String()
	secrets := append([]string{adminToken, base64.StdEncoding.EncodeToString(e.cfg.MasterKey),
		string(e.cfg.EphemeralSecret), string(e.cfg.TURNSecret)}, *e.seen...)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		probe := s
		if len(probe) > 24 {
			probe = probe[len(probe)-24:] // a signature or the secret's tail
		}
		if strings.Contains(logs, probe) {
			t.Errorf("logs contain a secret or token (%d bytes)", len(s))
		}
	}
}
