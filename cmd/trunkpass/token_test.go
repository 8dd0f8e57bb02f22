package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
)

const (
	testEdgeIssuer   = "http://127.0.0.1:8080"
	testEdgeAudience = "sip:trunk.example.net"
)

// fixtureKey is the Ed25519 key (seed 00 01 … 1f) that signed
// testdata/edge_token.jwt.
func fixtureKey(t *testing.T) *chain.SigningKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return &chain.SigningKey{ID: "test-ed25519", Alg: chain.AlgEdDSA, Private: ed25519.NewKeyFromSeed(seed), State: chain.KeyActive}
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// jwksFile writes the JWKS of keys to a fresh file and returns its path.
func jwksFile(t *testing.T, keys ...*chain.SigningKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksDoc(t, keys...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func jwksDoc(t *testing.T, keys ...*chain.SigningKey) []byte {
	t.Helper()
	doc, err := chain.PublicJWKS(keys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func newActiveKey(t *testing.T, alg string) *chain.SigningKey {
	t.Helper()
	k, err := chain.GenerateSigningKey(alg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.State = chain.KeyActive
	return k
}

// mintEdge signs an edge token for alice issued at iat and living life,
// after edit changes its claims.
func mintEdge(t *testing.T, key *chain.SigningKey, iat time.Time, life time.Duration, edit func(*chain.EdgeClaims)) string {
	t.Helper()
	c := &chain.EdgeClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testEdgeIssuer,
			Subject:   "alice",
			Audience:  jwt.ClaimStrings{testEdgeAudience},
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(life)),
			ID:        "jti-" + key.ID[:8],
		},
		CID: "acme",
		SIP: chain.SIPGrant{AOR: "sip:alice@acme.trunk.example.net", Methods: []string{"REGISTER", "INVITE"}},
	}
	if edit != nil {
		edit(c)
	}
	s, err := chain.MintEdgeToken(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tamper replaces old with new in the token's claims, keeping the
// signature.
func tamper(t *testing.T, token, old, new string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(claims), old, new, 1)
	if changed == string(claims) {
		t.Fatalf("claims do not contain %q", old)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(changed))
	return strings.Join(parts, ".")
}

func TestTestdataFixturesAgree(t *testing.T) {
	t.Run("the testdata JWKS holds the fixture key", func(t *testing.T) {
		checkGolden(t, "edge_jwks.json", string(jwksDoc(t, fixtureKey(t))))
	})
	t.Run("the fixture token verifies with the fixture key while it was valid", func(t *testing.T) {
		v := &chain.EdgeVerifier{
			Keys: chain.KeySetOf(fixtureKey(t)), Issuer: testEdgeIssuer, Audience: testEdgeAudience,
			Now: func() time.Time { return time.Unix(1767225600+60, 0) },
		}
		if _, err := v.Verify(readFixture(t, "edge_token.jwt")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTokenInspectDecodesWithoutVerifying(t *testing.T) {
	token := readFixture(t, "edge_token.jwt")
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{name: "the token is taken from the argument", args: []string{token}},
		{name: "the token is read from stdin without an argument", stdin: token + "\n"},
		{name: "the token is read from stdin for a dash", stdin: "  " + token + "\r\n", args: []string{"-"}},
		{name: "a Bearer prefix is removed", args: []string{"Bearer " + token}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := execTrunkpass(t, tt.stdin, append([]string{"token", "inspect"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "edge_token_inspect.golden", out)
			if !strings.Contains(errOut, "NOT VERIFIED: decoded only") {
				t.Errorf("stderr %q lacks the NOT VERIFIED warning", errOut)
			}
		})
	}
}

func TestTokenInspectShowsAnAssertion(t *testing.T) {
	t.Setenv(envCustomerSecret, testCustomerSecret)
	assertion, _, err := execTrunkpass(t, "", "mint", "assertion", "--customer", "acme", "--secret-id", "s1",
		"--sub", "alice", "--aud", testIssuerURL, "--token-ttl", "120s")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := execTrunkpass(t, assertion, "token", "inspect")
	if err != nil {
		t.Fatal(err)
	}
	var got tokenReport
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Verified || got.Kind != "customer assertion" {
		t.Errorf("verified %v, kind %q; want false, customer assertion", got.Verified, got.Kind)
	}
	if got.Header["kid"] != "s1" || got.Claims["iss"] != "acme" || got.Claims["sub"] != "alice" || got.Claims["ttl"] != 120.0 {
		t.Errorf("header %v claims %v", got.Header, got.Claims)
	}
	exp, err := time.Parse(time.RFC3339, got.Times["exp"])
	if err != nil || exp.Unix() != int64(got.Claims["exp"].(float64)) {
		t.Errorf("times.exp %q does not match exp %v", got.Times["exp"], got.Claims["exp"])
	}
	if !strings.Contains(errOut, "NOT VERIFIED") {
		t.Errorf("stderr %q lacks the warning", errOut)
	}
}

func TestTokenInspectRefusesMalformedTokens(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	header := b64(`{"alg":"EdDSA"}`)
	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{name: "an empty input is refused", token: " \n", wantErr: chain.ErrMalformed},
		{name: "two parts are refused", token: header + "." + b64(`{}`), wantErr: chain.ErrMalformed},
		{name: "four parts are refused", token: header + "." + b64(`{}`) + ".c2ln.eA", wantErr: chain.ErrMalformed},
		{name: "a header that is not base64url is refused", token: "!!." + b64(`{}`) + ".c2ln", wantErr: chain.ErrMalformed},
		{name: "a header that is not JSON is refused", token: b64("alg") + "." + b64(`{}`) + ".c2ln", wantErr: chain.ErrMalformed},
		{name: "claims that are a JSON array are refused", token: header + "." + b64(`["x"]`) + ".c2ln", wantErr: chain.ErrMalformed},
		{name: "claims that are JSON null are refused", token: header + "." + b64(`null`) + ".c2ln", wantErr: chain.ErrMalformed},
		{name: "claims with data after the object are refused", token: header + "." + b64(`{} {}`) + ".c2ln", wantErr: chain.ErrMalformed},
		{name: "an empty signature is refused", token: header + "." + b64(`{}`) + ".", wantErr: chain.ErrMalformed},
		{name: "an input over 64 KiB is refused", token: strings.Repeat("a", tokenMaxInput+1), wantErr: chain.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := execTrunkpass(t, tt.token, "token", "inspect", "-")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if out != "" {
				t.Errorf("printed %q for a malformed token", out)
			}
		})
	}
}

func TestTokenVerifyAcceptsAValidToken(t *testing.T) {
	key := newActiveKey(t, chain.AlgEdDSA)
	ecKey := newActiveKey(t, chain.AlgES256)
	doc := jwksDoc(t, key, ecKey)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	edToken := mintEdge(t, key, now, 10*time.Minute, nil)
	ecToken := mintEdge(t, ecKey, now, 10*time.Minute, nil)

	tests := []struct {
		name  string
		jwks  string
		token string
		stdin string
	}{
		{name: "an EdDSA token verifies against a JWKS file", jwks: file, token: edToken},
		{name: "an ES256 token verifies against a JWKS file", jwks: file, token: ecToken},
		{name: "a token verifies against a JWKS URL on loopback", jwks: srv.URL + "/.well-known/jwks.json", token: edToken},
		{name: "a token read from stdin verifies", jwks: file, stdin: edToken + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"token", "verify", "--jwks", tt.jwks, "--iss", testEdgeIssuer, "--aud", testEdgeAudience}
			if tt.token != "" {
				args = append(args, tt.token)
			}
			out, _, err := execTrunkpass(t, tt.stdin, args...)
			if err != nil {
				t.Fatalf("token verify: %v", err)
			}
			var got tokenReport
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if !got.Verified || got.Kind != "edge token" || got.Claims["sub"] != "alice" || got.Claims["cid"] != "acme" {
				t.Errorf("report %+v", got)
			}
			if got.Times["exp"] == "" || got.Times["iat"] == "" {
				t.Errorf("times %v lack exp or iat", got.Times)
			}
		})
	}
}

func TestTokenVerifyRefusesBadTokens(t *testing.T) {
	key := newActiveKey(t, chain.AlgEdDSA)
	other := newActiveKey(t, chain.AlgEdDSA)
	file := jwksFile(t, key)
	now := time.Now()
	valid := mintEdge(t, key, now, 10*time.Minute, nil)
	tests := []struct {
		name      string
		jwks      string
		token     string
		extra     []string
		wantErr   error
		wantInErr string
	}{
		{name: "a tampered token is refused for its signature",
			jwks: file, token: tamper(t, valid, `"sub":"alice"`, `"sub":"mallory"`), wantErr: chain.ErrBadSignature, wantInErr: "signature invalid"},
		{name: "an expired token is refused as expired",
			jwks: file, token: mintEdge(t, key, now.Add(-2*time.Hour), time.Hour, nil), wantErr: chain.ErrExpired, wantInErr: "expired"},
		{name: "the expired fixture token is refused as expired",
			jwks: filepath.Join("testdata", "edge_jwks.json"), token: readFixture(t, "edge_token.jwt"), wantErr: chain.ErrExpired, wantInErr: "expired"},
		{name: "a token for another audience is refused",
			jwks: file, token: valid, extra: []string{"--aud", "sip:other.example.net"}, wantErr: chain.ErrAudience},
		{name: "a token from another issuer is refused",
			jwks: file, token: valid, extra: []string{"--iss", "http://127.0.0.1:9999"}, wantErr: chain.ErrIssuer},
		{name: "a token signed by a key not in the JWKS is refused",
			jwks: file, token: mintEdge(t, other, now, 10*time.Minute, nil), wantErr: chain.ErrUnknownKey},
		{name: "a token living longer than --max-age is refused",
			jwks: file, token: mintEdge(t, key, now, 2*time.Hour, nil), wantErr: chain.ErrLifetime},
		{name: "a shorter --max-age is applied",
			jwks: file, token: valid, extra: []string{"--max-age", "5m"}, wantErr: chain.ErrLifetime},
		{name: "a token not yet valid is refused",
			jwks: file, token: mintEdge(t, key, now.Add(time.Hour), 10*time.Minute, nil), wantErr: chain.ErrNotYetValid},
		{name: "an HS256 assertion is refused as an edge token",
			jwks: file, token: hsToken(t), wantErr: chain.ErrAlgorithm},
		{name: "a malformed token is refused",
			jwks: file, token: "not-a-jwt", wantErr: chain.ErrMalformed},
		{name: "a JWKS file that does not exist is refused",
			jwks: filepath.Join(t.TempDir(), "missing.json"), token: valid, wantErr: os.ErrNotExist},
		{name: "a JWKS that is not JSON is refused",
			jwks: writeSecretFile(t, "<html>"), token: valid, wantErr: chain.ErrMalformed},
		{name: "a JWKS over 1 MiB is refused",
			jwks: writeSecretFile(t, `{"keys":[]}`+strings.Repeat(" ", jwksMaxSize)), token: valid, wantErr: chain.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"token", "verify", "--jwks", tt.jwks, "--iss", testEdgeIssuer, "--aud", testEdgeAudience}, tt.extra...)
			out, _, err := execTrunkpass(t, "", append(args, tt.token)...)
			if err == nil {
				t.Fatalf("token verify accepted it: %s", out)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
			if out != "" {
				t.Errorf("printed %q for a refused token", out)
			}
		})
	}
}

// hsToken is a customer assertion, which no JWKS verifies.
func hsToken(t *testing.T) string {
	t.Helper()
	now := time.Now()
	s, err := chain.MintAssertion(chain.Secret{ID: "test-ed25519", Value: []byte(testCustomerSecret)}, &chain.AssertionClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: testEdgeIssuer, Subject: "alice", Audience: jwt.ClaimStrings{testEdgeAudience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "x"},
	}, "HS256", false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenVerifyRefusesABadJWKSURL(t *testing.T) {
	key := newActiveKey(t, chain.AlgEdDSA)
	token := mintEdge(t, key, time.Now(), 10*time.Minute, nil)
	big := append(jwksDoc(t, key), []byte(strings.Repeat(" ", jwksMaxSize))...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write(big)
		case "/error":
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name      string
		path      string
		wantErr   error
		wantInErr string
	}{
		{name: "a JWKS URL answering 404 is refused", path: "/missing", wantInErr: "404"},
		{name: "a JWKS URL answering 503 is refused", path: "/error", wantInErr: "503"},
		{name: "a JWKS body over 1 MiB is refused", path: "/big", wantErr: chain.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execTrunkpass(t, "", "token", "verify", "--jwks", srv.URL+tt.path,
				"--iss", testEdgeIssuer, "--aud", testEdgeAudience, token)
			if err == nil {
				t.Fatal("token verify succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
		})
	}
}
