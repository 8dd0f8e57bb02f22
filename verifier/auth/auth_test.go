package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/icholy/digest"
	"github.com/trunkpass/trunkpass/chain"
)

var (
	t0  = time.Unix(1_800_000_000, 0)
	src = netip.MustParseAddrPort("127.0.0.1:5099")
)

func clock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

func request(method sip.RequestMethod, headers ...string) *sip.Request {
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: "bob", Host: "trunk.example.net"})
	for i := 0; i+1 < len(headers); i += 2 {
		req.AppendHeader(sip.NewHeader(headers[i], headers[i+1]))
	}
	return req
}

func TestSplitCredentials(t *testing.T) {
	tests := []struct {
		name, in, scheme, value string
		ok                      bool
	}{
		{"a Bearer prefix is removed", "Bearer a.b.c", SchemeBearer, "a.b.c", true},
		{"the prefix is case-insensitive", "bearer  a.b.c ", SchemeBearer, "a.b.c", true},
		{"a bare JWT is a Bearer token", "a.b.c", SchemeBearer, "a.b.c", true},
		{"Digest keeps its parameters", `Digest username="x", nonce="n"`, SchemeDigest, `username="x", nonce="n"`, true},
		{"an empty value is nothing", "  ", "", "", false},
		{"an empty Bearer is nothing", "Bearer ", "", "", false},
		{"another scheme is nothing", `Basic Zm9vOmJhcg==`, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, v, ok := SplitCredentials(tt.in)
			if s != tt.scheme || v != tt.value || ok != tt.ok {
				t.Fatalf("SplitCredentials(%q) = %q, %q, %v", tt.in, s, v, ok)
			}
		})
	}
}

func TestCredentialsReadsProxyAuthorizationButNotOnCancel(t *testing.T) {
	req := request(sip.INVITE, "Proxy-Authorization", "Bearer x.y.z")
	if tok, ok := BearerToken(req); !ok || tok != "x.y.z" {
		t.Fatalf("BearerToken = %q, %v", tok, ok)
	}
	cancel := request(sip.CANCEL, "Authorization", "Bearer x.y.z")
	if _, ok := BearerToken(cancel); ok {
		t.Fatal("CANCEL credentials were read")
	}
}

// issuer serves RFC 8414 metadata and a JWKS of its keys; it can rotate
// and go down.
type issuer struct {
	srv     *httptest.Server
	keys    atomic.Pointer[[]*chain.SigningKey]
	down    atomic.Bool
	fetches atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{}
	k, err := chain.GenerateSigningKey(chain.AlgEdDSA, t0)
	if err != nil {
		t.Fatal(err)
	}
	k.State = chain.KeyActive
	is.keys.Store(&[]*chain.SigningKey{k})
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case MetadataPath:
			json.NewEncoder(w).Encode(Metadata{Issuer: is.srv.URL, JWKSURI: is.srv.URL + "/.well-known/jwks.json"})
		case "/.well-known/jwks.json":
			is.fetches.Add(1)
			doc, _ := chain.PublicJWKS(*is.keys.Load())
			json.NewEncoder(w).Encode(doc)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) active() *chain.SigningKey { return (*is.keys.Load())[len(*is.keys.Load())-1] }

func (is *issuer) rotate(t *testing.T) {
	k, err := chain.GenerateSigningKey(chain.AlgES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	k.State = chain.KeyActive
	is.keys.Store(&[]*chain.SigningKey{is.active(), k})
}

func (is *issuer) mint(t *testing.T, key *chain.SigningKey, mod func(*chain.EdgeClaims)) string {
	c := &chain.EdgeClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: is.srv.URL, Subject: "alice", Audience: jwt.ClaimStrings{"sip:trunk.example.net"},
			IssuedAt: jwt.NewNumericDate(t0), NotBefore: jwt.NewNumericDate(t0),
			ExpiresAt: jwt.NewNumericDate(t0.Add(10 * time.Minute)), ID: "j1",
		},
		CID: "acme",
		SIP: chain.SIPGrant{AOR: "sip:alice@acme.example", Methods: []string{"REGISTER", "INVITE"}},
	}
	if mod != nil {
		mod(c)
	}
	tok, err := chain.MintEdgeToken(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBearerJWTWithLiveIssuer(t *testing.T) {
	is := newIssuer(t)
	now := t0.Add(time.Minute)
	keys := NewJWKSource(is.srv.URL, "", is.srv.Client(), time.Hour)
	b := &BearerJWT{
		Verifier: &chain.EdgeVerifier{Keys: keys, Issuer: is.srv.URL, Audience: "sip:trunk.example.net", MaxAge: time.Hour, Now: clock(&now)},
		Cache:    NewTokenCache(10, clock(&now)),
	}
	ctx := context.Background()
	tok := is.mint(t, is.active(), nil)

	t.Run("a token of the current key verifies after discovery", func(t *testing.T) {
		id, err := b.Authenticate(ctx, request(sip.REGISTER, "Authorization", "Bearer "+tok), src)
		if err != nil {
			t.Fatal(err)
		}
		if id.User != "alice" || id.AOR != "sip:alice@acme.example" || id.Customer != "acme" || id.Authenticator != NameBearer {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("a cached token costs no verification", func(t *testing.T) {
		before := b.Cache.hits
		if _, err := b.Verify(tok); err != nil {
			t.Fatal(err)
		}
		if b.Cache.hits != before+1 {
			t.Fatal("cache not hit")
		}
	})
	t.Run("a rotated key is fetched on its first unknown kid", func(t *testing.T) {
		is.rotate(t)
		tok2 := is.mint(t, is.active(), nil)
		if _, err := b.Verify(tok2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cached keys keep working while the issuer is down", func(t *testing.T) {
		is.down.Store(true)
		defer is.down.Store(false)
		tok3 := is.mint(t, is.active(), func(c *chain.EdgeClaims) { c.ID = "j3" })
		if _, err := b.Verify(tok3); err != nil {
			t.Fatal(err)
		}
		other, _ := chain.GenerateSigningKey(chain.AlgEdDSA, t0)
		other.State = chain.KeyActive
		if _, err := b.Verify(is.mint(t, other, nil)); !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, chain.ErrUnknownKey) {
			t.Fatalf("unknown kid during outage: %v", err)
		}
	})
	t.Run("unknown kids refetch at most at the rate limit", func(t *testing.T) {
		before := is.fetches.Load()
		for range 20 {
			other, _ := chain.GenerateSigningKey(chain.AlgEdDSA, t0)
			other.State = chain.KeyActive
			b.Verify(is.mint(t, other, nil))
		}
		if n := is.fetches.Load() - before; n > 3 {
			t.Fatalf("%d fetches for 20 unknown kids", n)
		}
	})
	t.Run("a cached token stops working when its key leaves the JWKS", func(t *testing.T) {
		if _, err := b.Verify(tok); err != nil {
			t.Fatal(err)
		}
		all := *is.keys.Load()
		is.keys.Store(&[]*chain.SigningKey{is.active()})
		defer is.keys.Store(&all)
		if err := keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Verify(tok); !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, chain.ErrUnknownKey) {
			t.Fatalf("token of a removed key: %v", err)
		}
		is.keys.Store(&all)
		keys.Refresh(ctx)
	})
	t.Run("a cached token stops working when it expires", func(t *testing.T) {
		now = t0.Add(11 * time.Minute)
		defer func() { now = t0.Add(time.Minute) }()
		if _, err := b.Verify(tok); !errors.Is(err, chain.ErrExpired) {
			t.Fatalf("expired token: %v", err)
		}
	})
}

func TestIntrospection(t *testing.T) {
	now := t0
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != "edge-1" || secret != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		switch r.Form.Get("token") {
		case "good":
			json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "alice", "aud": []string{"sip:trunk.example.net"},
				"iat": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix(), "cid": "acme",
				"sip": map[string]any{"aor": "sip:alice@acme.example", "methods": []string{"REGISTER"}}})
		case "noiss", "otheriss":
			a := map[string]any{"active": true, "sub": "alice", "aud": "sip:trunk.example.net", "exp": t0.Add(time.Minute).Unix()}
			if r.Form.Get("token") == "otheriss" {
				a["iss"] = "https://other.example"
			}
			json.NewEncoder(w).Encode(a)
		case "otheraud":
			json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "alice", "aud": "sip:other", "exp": t0.Add(time.Minute).Unix()})
		default:
			json.NewEncoder(w).Encode(map[string]any{"active": false})
		}
	}))
	defer srv.Close()
	in := &Introspection{URL: srv.URL, ClientID: "edge-1", ClientSecret: "s3cret", Audience: "sip:trunk.example.net",
		Client: srv.Client(), Cache: NewTokenCache(10, clock(&now)), Now: clock(&now)}
	ctx := context.Background()

	t.Run("an active token is an identity with its grant", func(t *testing.T) {
		id, err := in.Authenticate(ctx, request(sip.REGISTER, "Authorization", "good"), src)
		if err != nil {
			t.Fatal(err)
		}
		if id.AOR != "sip:alice@acme.example" || !id.Grant.AllowsMethod("REGISTER") || id.Customer != "acme" {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("the answer is cached until the token expires", func(t *testing.T) {
		before := calls.Load()
		in.Verify(ctx, "good")
		if calls.Load() != before {
			t.Fatal("asked again")
		}
		now = t0.Add(6 * time.Minute)
		defer func() { now = t0 }()
		if _, err := in.Verify(ctx, "good"); !errors.Is(err, chain.ErrExpired) {
			t.Fatalf("after exp: %v", err)
		}
	})
	t.Run("an inactive token is invalid", func(t *testing.T) {
		if _, err := in.Verify(ctx, "bad"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	})
	t.Run("another audience is invalid", func(t *testing.T) {
		if _, err := in.Verify(ctx, "otheraud"); !errors.Is(err, chain.ErrAudience) {
			t.Fatal(err)
		}
	})
	t.Run("with an issuer configured, an answer without iss or with another is invalid", func(t *testing.T) {
		strict := *in
		strict.Issuer, strict.Cache = "https://issuer.example", nil
		for _, tok := range []string{"noiss", "otheriss"} {
			if _, err := strict.Verify(ctx, tok); !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, chain.ErrIssuer) {
				t.Fatalf("%s: %v", tok, err)
			}
		}
		if _, err := in.Verify(ctx, "noiss"); err != nil {
			t.Fatalf("without an issuer configured: %v", err)
		}
	})
	t.Run("a wrong client secret makes the server unavailable, not the token invalid", func(t *testing.T) {
		bad := *in
		bad.ClientSecret, bad.Cache = "nope", nil
		if _, err := bad.Verify(ctx, "good"); !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
	})
}

func hsToken(t *testing.T, secret []byte, alg string, claims jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestHSProfiles(t *testing.T) {
	now := t0
	old := chain.Secret{ID: "a", Value: []byte("old-secret-0123456789abcdef"), NotBefore: t0.Add(-48 * time.Hour), NotAfter: t0.Add(-time.Hour)}
	cur := chain.Secret{ID: "b", Value: []byte("new-secret-0123456789abcdef"), NotBefore: t0.Add(-2 * time.Hour)}
	h := &HSProfiles{
		TagClaim: "tag",
		Profiles: map[string]*Profile{"gold": {Tag: "gold", Secrets: []chain.Secret{old, cur}, Headers: map[string]string{"X-Tier": "gold"}, Domain: "acme.example"}},
		Audience: "sip:trunk.example.net", MaxAge: time.Hour, DefaultMethods: []string{"REGISTER"}, Now: clock(&now),
	}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"tag": "gold", "sub": "alice", "aud": "sip:trunk.example.net", "iat": t0.Unix(), "exp": t0.Add(10 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	id, err := h.Verify(hsToken(t, cur.Value, "HS256", claims(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if id.AOR != "sip:alice@acme.example" || id.Grant.Headers["X-Tier"] != "gold" || id.Customer != "gold" {
		t.Fatalf("identity %+v", id)
	}
	rejects := []struct {
		name  string
		token string
		want  error
	}{
		{"a secret outside its window verifies nothing", hsToken(t, old.Value, "HS256", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"an unknown tag verifies nothing", hsToken(t, cur.Value, "HS256", claims(func(c jwt.MapClaims) { c["tag"] = "x' OR 1=1" })), chain.ErrUnknownKey},
		{"HS512 is not allowed", hsToken(t, cur.Value, "HS512", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"an expired token fails", hsToken(t, cur.Value, "HS256", claims(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Second).Unix() })), jwt.ErrTokenExpired},
		{"a token without exp fails", hsToken(t, cur.Value, "HS256", claims(func(c jwt.MapClaims) { delete(c, "exp") })), jwt.ErrTokenRequiredClaimMissing},
		{"another audience fails", hsToken(t, cur.Value, "HS256", claims(func(c jwt.MapClaims) { c["aud"] = "sip:other" })), jwt.ErrTokenInvalidAudience},
		{"a future nbf fails", hsToken(t, cur.Value, "HS256", claims(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() })), jwt.ErrTokenNotValidYet},
		{"a lifetime over the maximum fails", hsToken(t, cur.Value, "HS256", claims(func(c jwt.MapClaims) { c["exp"] = t0.Add(2 * time.Hour).Unix() })), chain.ErrLifetime},
		{"alg none fails", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), jwt.ErrTokenSignatureInvalid},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Verify(tt.token)
			if !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func newDigest(t *testing.T, now *time.Time) (*Digest, []byte) {
	secret := []byte("ephemeral-shared-secret")
	d, err := NewDigest("trunk.example.net", &chain.EphemeralVerifier{Secrets: [][]byte{[]byte("newer"), secret}, MaxLifetime: 24 * time.Hour, Now: clock(now)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return d, secret
}

// answer computes a client's Digest answer to challenge.
func answer(t *testing.T, challenge, method, uri, username, password string) string {
	chal, err := digest.ParseChallenge(challenge)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: method, URI: uri, Username: username, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(cred.String(), digest.Prefix)
}

// uri parses a SIP URI for the tests.
func uri(t testing.TB, s string) *sip.Uri {
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatal(err)
	}
	return &u
}

func TestDigest(t *testing.T) {
	now := t0
	ruri := uri(t, "sip:trunk.example.net")
	d, secret := newDigest(t, &now)
	username, password, _ := chain.MintEphemeral(secret, "alice@acme.example", t0.Add(time.Hour), chain.EphemeralFormat{})
	chals := d.Challenges(false)
	for i, alg := range []string{AlgMD5, AlgSHA256} {
		t.Run("an answer with "+alg+" verifies", func(t *testing.T) {
			id, err := d.Verify("REGISTER", ruri, answer(t, chals[i], "REGISTER", "sip:trunk.example.net", username, password))
			if err != nil {
				t.Fatal(err)
			}
			if id.User != "alice" || id.AOR != "alice@acme.example" || !id.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("identity %+v", id)
			}
		})
	}
	good := answer(t, chals[0], "REGISTER", "sip:trunk.example.net", username, password)
	rejects := []struct {
		name   string
		method string
		params string
		want   error
	}{
		{"a wrong password fails", "REGISTER", answer(t, chals[0], "REGISTER", "sip:trunk.example.net", username, "AAAA"), chain.ErrBadSignature},
		{"an answer for another method fails", "INVITE", good, chain.ErrBadSignature},
		{"a forged nonce fails", "REGISTER", strings.Replace(good, `nonce="`, `nonce="x`, 1), ErrNonce},
		{"an expired credential fails", "REGISTER", func() string {
			u, p, _ := chain.MintEphemeral(secret, "alice", t0.Add(-time.Second), chain.EphemeralFormat{})
			return answer(t, chals[0], "REGISTER", "sip:trunk.example.net", u, p)
		}(), chain.ErrExpired},
		{"an answer for another Request-URI fails", "REGISTER", answer(t, chals[0], "REGISTER", "sip:other.example.net", username, password), ErrURIMismatch},
		{"an answer for another user part fails", "REGISTER", answer(t, chals[0], "REGISTER", "sip:bob@trunk.example.net", username, password), ErrURIMismatch},
		{"an answer for another port fails", "REGISTER", answer(t, chals[0], "REGISTER", "sip:trunk.example.net:5080", username, password), ErrURIMismatch},
		{"an answer for a sips URI fails", "REGISTER", answer(t, chals[0], "REGISTER", "sips:trunk.example.net", username, password), ErrURIMismatch},
		{"an answer whose uri is no SIP URI fails", "REGISTER", answer(t, chals[0], "REGISTER", "<garbage>", username, password), ErrURIMismatch},
		{"another realm fails", "REGISTER", strings.Replace(good, `realm="trunk.example.net"`, `realm="evil"`, 1), chain.ErrAudience},
		{"no qop fails", "REGISTER", `username="1:a", realm="trunk.example.net", nonce="n", uri="sip:x", response="00"`, chain.ErrMalformed},
		{"garbage fails", "REGISTER", `,,,=`, chain.ErrMalformed},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Verify(tt.method, ruri, tt.params)
			if !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("the uri may differ from the Request-URI in host case and parameters", func(t *testing.T) {
		for _, u := range []string{"sip:TRUNK.example.net", "sip:trunk.example.net;transport=udp"} {
			if _, err := d.Verify("REGISTER", ruri, answer(t, chals[0], "REGISTER", u, username, password)); err != nil {
				t.Fatalf("uri %s: %v", u, err)
			}
		}
	})
	t.Run("a right answer with an old nonce is stale", func(t *testing.T) {
		now = t0.Add(2 * time.Minute)
		defer func() { now = t0 }()
		if _, err := d.Verify("REGISTER", ruri, good); !errors.Is(err, ErrStaleNonce) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("the challenge offers SHA-256 and MD5 with qop auth", func(t *testing.T) {
		c := d.Challenges(true)
		if len(c) != 2 || !strings.Contains(c[1], "algorithm=SHA-256") || !strings.Contains(c[0], "algorithm=MD5") || !strings.Contains(c[0], `qop="auth"`) || !strings.Contains(c[0], "stale=true") {
			t.Fatalf("challenges %q", c)
		}
	})
}

func TestDigestHA1Cache(t *testing.T) {
	now := t0
	d, secret := newDigest(t, &now)
	ruri := uri(t, "sip:trunk.example.net")
	username, password, _ := chain.MintEphemeral(secret, "alice", t0.Add(time.Hour), chain.EphemeralFormat{})
	good := answer(t, d.Challenges(false)[0], "REGISTER", "sip:trunk.example.net", username, password)
	if _, err := d.Verify("REGISTER", ruri, good); err != nil {
		t.Fatal(err)
	}
	if d.ha1.len() != 1 {
		t.Fatalf("%d cached HA1 values after a good answer", d.ha1.len())
	}
	t.Run("a wrong answer for a cached username still fails", func(t *testing.T) {
		bad := answer(t, d.Challenges(false)[0], "REGISTER", "sip:trunk.example.net", username, "wrong")
		if _, err := d.Verify("REGISTER", ruri, bad); !errors.Is(err, chain.ErrBadSignature) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a cached HA1 stops working when its secret is removed", func(t *testing.T) {
		secrets := d.Verifier.Secrets
		defer func() { d.Verifier.Secrets = secrets }()
		d.Verifier.Secrets = [][]byte{[]byte("newer"), []byte("replacement")}
		if _, err := d.Verify("REGISTER", ruri, good); !errors.Is(err, chain.ErrBadSignature) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("failed answers are not cached", func(t *testing.T) {
		before := d.ha1.len()
		u, _, _ := chain.MintEphemeral(secret, "mallory", t0.Add(time.Hour), chain.EphemeralFormat{})
		d.Verify("REGISTER", ruri, answer(t, d.Challenges(false)[0], "REGISTER", "sip:trunk.example.net", u, "guess"))
		if d.ha1.len() != before {
			t.Fatal("a failed answer was cached")
		}
	})
	t.Run("the cache is bounded", func(t *testing.T) {
		d.HA1Cache = 50
		for i := range 200 {
			u, p, _ := chain.MintEphemeral(secret, fmt.Sprint("user", i), t0.Add(time.Hour), chain.EphemeralFormat{})
			if _, err := d.Verify("REGISTER", ruri, answer(t, d.Challenges(false)[0], "REGISTER", "sip:trunk.example.net", u, p)); err != nil {
				t.Fatal(err)
			}
		}
		if n := d.ha1.len(); n > 50 {
			t.Fatalf("%d cached HA1 values", n)
		}
	})
}

func TestTokenCacheIsBounded(t *testing.T) {
	now := t0
	c := NewTokenCache(100, clock(&now))
	for i := range 1000 {
		c.Put(c.Key(strings.Repeat("x", i)), &Identity{ExpiresAt: t0.Add(time.Minute)})
	}
	if c.Len() > 100 {
		t.Fatalf("%d entries", c.Len())
	}
}

func TestParseDigest(t *testing.T) {
	t.Run("quoted values with escapes and bare tokens parse", func(t *testing.T) {
		c, err := ParseDigest(`username="1:a\"b", realm="r", nonce="n", uri="sip:x", response="ab", qop=auth, nc=00000001, cnonce="c", algorithm=MD5`)
		if err != nil {
			t.Fatal(err)
		}
		if c.Username != `1:a"b` || c.QOP != "auth" || c.NC != "00000001" || c.Algorithm != "MD5" {
			t.Fatalf("%+v", c)
		}
	})
	for _, bad := range []string{`username="x`, `username="a", username="b", nonce=n, uri=u, response=r`, `username`, `username="a" junk, nonce=n`} {
		t.Run("malformed "+bad+" fails", func(t *testing.T) {
			if _, err := ParseDigest(bad); !errors.Is(err, chain.ErrMalformed) && !errors.Is(err, chain.ErrMissingClaim) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestBearerJWTPassesForeignTokensOn(t *testing.T) {
	is := newIssuer(t)
	now := t0.Add(time.Minute)
	b := &BearerJWT{
		Verifier:    &chain.EdgeVerifier{Keys: NewJWKSource(is.srv.URL, "", is.srv.Client(), time.Hour), Issuer: is.srv.URL, Audience: "sip:trunk.example.net", MaxAge: time.Hour, Now: clock(&now)},
		PassUnknown: true,
	}
	ctx := context.Background()
	other, _ := chain.GenerateSigningKey(chain.AlgEdDSA, t0)
	other.State = chain.KeyActive
	good := is.mint(t, is.active(), nil)
	forged := good[:len(good)-4] + "AAAA"
	for _, tt := range []struct {
		name, token string
		want        error
	}{
		{"an opaque token is left to the next authenticator", "opaque-token-1234", ErrNoCredentials},
		{"a JWT of another issuer is left to the next authenticator", is.mint(t, other, func(c *chain.EdgeClaims) { c.Issuer = "https://as.example" }), ErrNoCredentials},
		{"a JWT whose kid is unknown is left to the next authenticator", is.mint(t, other, nil), ErrNoCredentials},
		{"a forged JWT of a known kid is invalid", forged, ErrInvalidCredentials},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.Authenticate(ctx, request(sip.REGISTER, "Authorization", "Bearer "+tt.token), src); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("a good token verifies", func(t *testing.T) {
		if _, err := b.Authenticate(ctx, request(sip.REGISTER, "Authorization", "Bearer "+good), src); err != nil {
			t.Fatal(err)
		}
	})
}

// A full cache drops its expired entries among those it samples, and at
// most one live entry: the first it looks at, when that one is live.
func TestEvictSample(t *testing.T) {
	for range 20 { // map order varies from run to run
		m := map[int]bool{} // value: expired
		for k := range 10 {
			m[k] = k%2 == 0
		}
		evictSample(m, func(expired bool) bool { return expired })
		live := 0
		for _, expired := range m {
			if expired {
				t.Fatalf("an expired entry survived: %v", m)
			}
			live++
		}
		if live < 4 || live > 5 {
			t.Fatalf("%d of 5 live entries left", live)
		}
	}
}
