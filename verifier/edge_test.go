package verifier

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/icholy/digest"
	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/verifier/auth"
)

var t0 = time.Unix(1_800_000_000, 0)

// testIssuer serves RFC 8414 metadata and a JWKS made with chain.
type testIssuer struct {
	srv  *httptest.Server
	keys atomic.Pointer[[]*chain.SigningKey]
	down atomic.Bool
}

func newTestIssuer(t testing.TB) *testIssuer {
	is := &testIssuer{}
	is.addKey(t, chain.AlgEdDSA)
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case auth.MetadataPath:
			json.NewEncoder(w).Encode(auth.Metadata{Issuer: is.srv.URL, JWKSURI: is.srv.URL + "/.well-known/jwks.json"})
		case "/.well-known/jwks.json":
			doc, _ := chain.PublicJWKS(*is.keys.Load())
			json.NewEncoder(w).Encode(doc)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) addKey(t testing.TB, alg string) *chain.SigningKey {
	k, err := chain.GenerateSigningKey(alg, t0)
	if err != nil {
		t.Fatal(err)
	}
	k.State = chain.KeyActive
	var keys []*chain.SigningKey
	if p := is.keys.Load(); p != nil {
		keys = append(keys, *p...)
	}
	keys = append(keys, k)
	is.keys.Store(&keys)
	return k
}

func (is *testIssuer) key() *chain.SigningKey { ks := *is.keys.Load(); return ks[len(ks)-1] }

func (is *testIssuer) claims(user string) *chain.EdgeClaims {
	now := time.Now()
	return &chain.EdgeClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: is.srv.URL, Subject: user, Audience: jwt.ClaimStrings{"sip:trunk.example.net"},
			IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)), ID: fmt.Sprint(now.UnixNano()),
		},
		CID: "acme",
		SIP: chain.SIPGrant{
			AOR:     "sip:" + user + "@acme.example",
			Methods: []string{"REGISTER", "INVITE"},
			Dial:    &chain.DialRules{Allow: []string{"+44*"}, Deny: []string{"+449*"}},
			Headers: map[string]string{"X-Customer-Tier": "gold"},
		},
	}
}

func (is *testIssuer) mint(t testing.TB, mod func(*chain.EdgeClaims)) string {
	c := is.claims("alice")
	if mod != nil {
		mod(c)
	}
	tok, err := chain.MintEdgeToken(is.key(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var ephemeralSecret = []byte("kamailio-shared-secret")

func testConfig(issuer string) Config {
	cfg := DefaultConfig()
	cfg.Listen = []string{"udp://127.0.0.1:0"}
	cfg.Issuer = issuer
	cfg.Upstream = "sip:127.0.0.1:5070"
	cfg.Ephemeral.Secrets = [][]byte{ephemeralSecret}
	cfg.RateLimit = RateLimitConfig{}
	return cfg
}

func newTestEdge(t testing.TB, cfg Config) *Edge {
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// sipRequest parses a request as if it came from src over UDP.
func sipRequest(t testing.TB, method, ruri, from, to, src string, headers ...string) *sip.Request {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%d\r\n", src, time.Now().UnixNano())
	fmt.Fprintf(&b, "From: <%s>;tag=f1\r\nTo: <%s>\r\nCall-ID: c%d\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n", from, to, time.Now().UnixNano(), method)
	fmt.Fprintf(&b, "Contact: <sip:%s>\r\n", strings.Replace(src, ":", ":", 1))
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	msg, err := sip.NewParser().ParseSIP([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	req.SetSource(src)
	req.SetTransport("UDP")
	return req
}

func handle(e *Edge, req *sip.Request) *sip.Response {
	rec := siptest.NewServerTxRecorder(req)
	e.handle(req, rec)
	res := rec.Result()
	if len(res) == 0 {
		return nil
	}
	return res[len(res)-1]
}

func headerValues(res *sip.Response, name string) []string {
	var out []string
	for _, h := range res.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

const (
	alice   = "sip:alice@acme.example"
	visitor = "127.0.0.1:5099"
)

// TestRejections lists every rejection of SPEC §4: none crashes, none passes.
func TestRejections(t *testing.T) {
	is := newTestIssuer(t)
	e := newTestEdge(t, testConfig(is.srv.URL))
	other, _ := chain.GenerateSigningKey(chain.AlgEdDSA, t0)
	other.State = chain.KeyActive
	good := is.mint(t, nil)
	pub := is.key().Private.Public().(ed25519.PublicKey)

	forged := func() string {
		parts := strings.Split(good, ".")
		c := is.claims("alice")
		c.SIP.Methods = append(c.SIP.Methods, "MESSAGE")
		body, _ := json.Marshal(c)
		return parts[0] + "." + jwtB64(body) + "." + parts[2]
	}()
	algNone := func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, is.claims("alice")).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	confused := func() string {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, is.claims("alice"))
		tk.Header["kid"] = is.key().ID
		s, _ := tk.SignedString([]byte(pub))
		return s
	}()
	otherKey := func() string {
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, is.claims("alice"))
		tk.Header["kid"] = is.key().ID
		s, _ := tk.SignedString(other.Private)
		return s
	}()

	tests := []struct {
		name       string
		method     string
		ruri       string
		from, to   string
		src        string
		token      string
		wantStatus int
		wantReason string
		wantHeader string // substring of the challenge header
	}{
		{"no credentials on REGISTER is challenged with 401", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "", 401, "", `Bearer realm="trunk.example.net", authz_server="` + is.srv.URL + `"`},
		{"no credentials on INVITE is challenged with 407", "INVITE", "sip:+441234@trunk.example.net", alice, "sip:+441234@trunk.example.net", visitor, "", 407, "", `Bearer realm="trunk.example.net"`},
		{"a forged token is an invalid token", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, forged, 401, "", `error="invalid_token"`},
		{"a token signed by another key with the same kid is invalid", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, otherKey, 401, "", `error="invalid_token"`},
		{"alg none is an invalid token", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, algNone, 401, "", `error="invalid_token"`},
		{"HS256 signed with the public key is an invalid token", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, confused, 401, "", `error="invalid_token"`},
		{"an expired token is invalid", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, is.mint(t, func(c *chain.EdgeClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-20 * time.Minute))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-10 * time.Minute))
		}), 401, "", `error="invalid_token"`},
		{"a token for another audience is invalid", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, is.mint(t, func(c *chain.EdgeClaims) { c.Audience = jwt.ClaimStrings{"sip:other.example"} }), 401, "", `error="invalid_token"`},
		{"a token living longer than max_token_age is invalid", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, is.mint(t, func(c *chain.EdgeClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(3 * time.Hour)) }), 401, "", `error="invalid_token"`},
		{"a token from another issuer is invalid", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, is.mint(t, func(c *chain.EdgeClaims) { c.Issuer = "http://evil.example" }), 401, "", `error="invalid_token"`},
		{"a token of another user is forbidden", "REGISTER", "sip:trunk.example.net", "sip:bob@acme.example", "sip:bob@acme.example", visitor, good, 403, "Forbidden: AOR mismatch", `error="insufficient_scope"`},
		{"a token of another domain is forbidden", "REGISTER", "sip:trunk.example.net", "sip:alice@globex.example", "sip:alice@globex.example", visitor, good, 403, "Forbidden: AOR mismatch", ""},
		{"the From of an INVITE must be the token's AOR", "INVITE", "sip:+441234@trunk.example.net", "sip:bob@acme.example", "sip:+441234@trunk.example.net", visitor, good, 403, "Forbidden: AOR mismatch", ""},
		{"a method outside the grant is forbidden", "MESSAGE", "sip:+441234@trunk.example.net", alice, "sip:+441234@trunk.example.net", visitor, good, 403, "Forbidden: method not allowed", `error="insufficient_scope"`},
		{"a denied number is forbidden", "INVITE", "sip:+449001234@trunk.example.net", alice, "sip:+449001234@trunk.example.net", visitor, good, 403, "Forbidden: destination not allowed", ""},
		{"a number outside the allow list is forbidden", "INVITE", "sip:+331234@trunk.example.net", alice, "sip:+331234@trunk.example.net", visitor, good, 403, "Forbidden: destination not allowed", ""},
		{"a source address outside the grant is forbidden", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, is.mint(t, func(c *chain.EdgeClaims) { c.SIP.CIDR = []string{"203.0.113.0/24"} }), 403, "Forbidden: source address not allowed", ""},
		{"a malformed token is invalid", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "not-a-jwt", 401, "", `error="invalid_token"`},
		{"an oversize token is invalid", "REGISTER", "sip:trunk.example.net", alice, alice, visitor, strings.Repeat("a", 9000) + ".b.c", 401, "", `error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdrs []string
			if tt.token != "" {
				hdrs = []string{"Authorization", "Bearer " + tt.token}
			}
			res := handle(e, sipRequest(t, tt.method, tt.ruri, tt.from, tt.to, tt.src, hdrs...))
			if res == nil {
				t.Fatal("no answer")
			}
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %s, want %d", res.StatusCode, res.Reason, tt.wantStatus)
			}
			if tt.wantReason != "" && res.Reason != tt.wantReason {
				t.Fatalf("reason %q, want %q", res.Reason, tt.wantReason)
			}
			header := "WWW-Authenticate"
			if tt.method != "REGISTER" {
				header = "Proxy-Authenticate"
			}
			vals := strings.Join(headerValues(res, header), " | ")
			if tt.wantHeader != "" && !strings.Contains(vals, tt.wantHeader) {
				t.Fatalf("%s = %q, want %q in it", header, vals, tt.wantHeader)
			}
			if tt.wantStatus != 403 && !strings.Contains(vals, "Digest realm=") {
				t.Fatalf("%s has no Digest challenge: %q", header, vals)
			}
			if tt.token == "" && strings.Contains(vals, "invalid_token") {
				t.Fatal("invalid_token without a token")
			}
		})
	}
}

func jwtB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestRegister(t *testing.T) {
	is := newTestIssuer(t)
	e := newTestEdge(t, testConfig(is.srv.URL))
	good := is.mint(t, nil)
	register := func(hdrs ...string) *sip.Response {
		return handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, hdrs...))
	}
	t.Run("a good token registers and the 200 echoes the Contact", func(t *testing.T) {
		res := register("Authorization", "Bearer "+good, "Expires", "3600")
		if res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
		c := headerValues(res, "Contact")
		if len(c) != 1 || !strings.Contains(c[0], "sip:"+visitor) {
			t.Fatalf("contact %q", c)
		}
		if !strings.Contains(c[0], "expires=") || strings.Contains(c[0], "expires=3600") {
			t.Fatalf("binding outlives the token: %q", c)
		}
		if e.Registrations() != 1 {
			t.Fatalf("%d registrations", e.Registrations())
		}
	})
	t.Run("a bare token in Proxy-Authorization works too", func(t *testing.T) {
		if res := register("Proxy-Authorization", good); res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("Expires 0 unregisters", func(t *testing.T) {
		if res := register("Authorization", "Bearer "+good, "Expires", "0"); res.StatusCode != 200 || e.Registrations() != 0 {
			t.Fatalf("status %d, %d registrations", res.StatusCode, e.Registrations())
		}
	})
	t.Run("Contact star with Expires 0 unregisters all", func(t *testing.T) {
		register("Authorization", "Bearer "+good)
		req := sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+good, "Expires", "0")
		req.RemoveHeader("Contact")
		req.AppendHeader(sip.NewHeader("Contact", "*"))
		if res := handle(e, req); res.StatusCode != 200 || e.Registrations() != 0 {
			t.Fatalf("status %d, %d registrations", res.StatusCode, e.Registrations())
		}
	})
	t.Run("Digest with ephemeral credentials registers after a challenge", func(t *testing.T) {
		res := register()
		if res.StatusCode != 401 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if res := register("Authorization", answerMD5(t, res, "").String()); res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
		bad := answerMD5(t, res, "wrong")
		res = register("Authorization", bad.String())
		if res.StatusCode != 401 || !strings.Contains(strings.Join(headerValues(res, "WWW-Authenticate"), "|"), "Digest") {
			t.Fatalf("bad password: status %d", res.StatusCode)
		}
	})
	t.Run("a Digest answer replayed on another Request-URI gets a fresh challenge", func(t *testing.T) {
		cred := answerMD5(t, register(), "")
		for _, ruri := range []string{"sip:other.example.net", "sip:trunk.example.net:5080", "sip:alice@trunk.example.net"} {
			res := handle(e, sipRequest(t, "REGISTER", ruri, alice, alice, visitor, "Authorization", cred.String()))
			if res.StatusCode != 401 || !strings.Contains(strings.Join(headerValues(res, "WWW-Authenticate"), "|"), "Digest realm=") {
				t.Fatalf("%s: status %d %s", ruri, res.StatusCode, res.Reason)
			}
		}
		res := handle(e, sipRequest(t, "REGISTER", "sip:TRUNK.example.net;transport=udp", alice, alice, visitor, "Authorization", cred.String()))
		if res.StatusCode != 200 {
			t.Fatalf("same resource, other spelling: status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("the MD5 Digest challenge stands first for SIPp and last for JsSIP", func(t *testing.T) {
		values := headerValues(register(), "WWW-Authenticate")
		if len(values) < 3 {
			t.Fatalf("challenges: %q", values)
		}
		for _, v := range []string{values[0], values[len(values)-1]} {
			if !strings.HasPrefix(v, "Digest ") || !strings.Contains(v, "algorithm=MD5") {
				t.Fatalf("first and last challenge must be Digest MD5: %q", values)
			}
		}
		if !slices.ContainsFunc(values, func(v string) bool { return strings.HasPrefix(v, "Bearer ") }) ||
			!slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, "algorithm=SHA-256") }) {
			t.Fatalf("Bearer and SHA-256 challenges missing: %q", values)
		}
	})
	t.Run("Digest for another user is forbidden", func(t *testing.T) {
		username, password, _ := chain.MintEphemeral(ephemeralSecret, "bob", time.Now().Add(time.Hour), chain.EphemeralFormat{})
		res := register()
		c, _ := digest.ParseChallenge(headerValues(res, "WWW-Authenticate")[1])
		cred, _ := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:trunk.example.net", Username: username, Password: password})
		if res := register("Authorization", cred.String()); res.StatusCode != 403 || res.Reason != "Forbidden: AOR mismatch" {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
}

func TestOptionsAndRateLimit(t *testing.T) {
	is := newTestIssuer(t)
	cfg := testConfig(is.srv.URL)
	cfg.RateLimit = RateLimitConfig{FailuresPerSecond: 0.001, Burst: 3}
	e := newTestEdge(t, cfg)
	t.Run("out-of-dialog OPTIONS is answered by the edge", func(t *testing.T) {
		if res := handle(e, sipRequest(t, "OPTIONS", "sip:trunk.example.net", alice, "sip:trunk.example.net", visitor)); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("a source failing too often is refused even with a good token", func(t *testing.T) {
		for range 3 {
			handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, "127.0.0.9:5060", "Authorization", "Bearer x.y.z"))
		}
		res := handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, "127.0.0.9:5060", "Authorization", "Bearer "+is.mint(t, nil)))
		if res.StatusCode != 403 || res.Reason != reasonRateLimited {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
		if res := handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+is.mint(t, nil))); res.StatusCode != 200 {
			t.Fatalf("other source: status %d", res.StatusCode)
		}
	})
	t.Run("an in-dialog request not routed through the edge is refused", func(t *testing.T) {
		req := sipRequest(t, "BYE", "sip:+441234@127.0.0.1:5070", alice, "sip:+441234@trunk.example.net", visitor)
		req.To().Params.Add("tag", "t1")
		if res := handle(e, req); res.StatusCode != 403 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}

func TestMatchAOR(t *testing.T) {
	tests := []struct {
		claim, uri string
		want       bool
	}{
		{"sip:alice@acme.example", "sip:alice@ACME.example", true},
		{"alice@acme.example", "sip:alice@acme.example:5060", true},
		{"sip:alice@acme.example", "sip:alice@globex.example", false},
		{"alice", "sip:alice@anything.example", true},
		{"alice", "sip:alicia@anything.example", false},
		{"", "sip:alice@acme.example", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s against %s is %v", tt.claim, tt.uri, tt.want), func(t *testing.T) {
			var u sip.Uri
			if err := sip.ParseUri(tt.uri, &u); err != nil {
				t.Fatal(err)
			}
			if got := MatchAOR(tt.claim, &u); got != tt.want {
				t.Fatalf("MatchAOR = %v", got)
			}
		})
	}
}

// answerMD5 answers the MD5 Digest challenge of a 401 to a REGISTER for
// sip:trunk.example.net with alice's ephemeral credentials, or with the
// given password instead when it is not empty.
func answerMD5(t *testing.T, res *sip.Response, password string) *digest.Credentials {
	t.Helper()
	var chal string
	for _, v := range headerValues(res, "WWW-Authenticate") {
		if strings.HasPrefix(v, "Digest") && strings.Contains(v, "MD5") {
			chal = v
		}
	}
	c, err := digest.ParseChallenge(chal)
	if err != nil {
		t.Fatalf("MD5 challenge %q: %v", chal, err)
	}
	username, ephemeral, _ := chain.MintEphemeral(ephemeralSecret, "alice@acme.example", time.Now().Add(time.Hour), chain.EphemeralFormat{})
	if password == "" {
		password = ephemeral
	}
	cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:trunk.example.net", Username: username, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}
