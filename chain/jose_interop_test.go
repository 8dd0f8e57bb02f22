package chain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// joseResult is one line printed by testdata/jose_verify.mjs.
type joseResult struct {
	OK      bool   `json:"ok"`
	Alg     string `json:"alg"`
	Kid     string `json:"kid"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	Payload struct {
		Sub string   `json:"sub"`
		CID string   `json:"cid"`
		SIP SIPGrant `json:"sip"`
	} `json:"payload"`
}

// jsonLines decodes the JSON lines of a script's output, ignoring others.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var res []T
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r T
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		res = append(res, r)
	}
	return res
}

// TestJOSEVerifiesChainTokens mints edge tokens with chain and has the npm
// jose package verify them against the JWKS chain publishes.
func TestJOSEVerifiesChainTokens(t *testing.T) {
	testpeer.RequireNode(t)
	keys := []*SigningKey{testKey(t, AlgEdDSA), testKey(t, AlgES256), testKey(t, AlgRS256)}
	doc, err := PublicJWKS(keys)
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwksFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, k := range keys {
		c := validEdgeClaims()
		c.SIP = SIPGrant{Methods: []string{"REGISTER", "INVITE", "MESSAGE"}, Dial: &DialRules{Allow: []string{"+44*"}}}
		tok, err := MintEdgeToken(k, c)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	// A token whose payload was swapped for a forged one, keeping the signature.
	parts := strings.Split(tokens[0], ".")
	forged := craft(t, map[string]any{}, map[string]any{"sub": "mallory"}, nil)
	parts[1] = strings.Split(forged, ".")[1]
	tampered := strings.Join(parts, ".")

	out, err := testpeer.RunNode(t, "chain/testdata/jose_verify.mjs", nil,
		append([]string{jwksFile, "https://issuer.example", "sip:trunk.example.net", strings.Join(EdgeAlgorithms, ","),
			strconv.FormatInt(t0.Unix()+60, 10)}, append(tokens, tampered)...)...)
	if err != nil {
		t.Fatalf("jose_verify.mjs: %v\n%s", err, out)
	}
	results := jsonLines[joseResult](t, out)
	if len(results) != 4 {
		t.Fatalf("jose_verify.mjs printed %d results, want 4:\n%s", len(results), out)
	}
	for i, k := range keys {
		r := results[i]
		if !r.OK {
			t.Errorf("jose refused the %s token: %s %s", k.Alg, r.Code, r.Error)
			continue
		}
		if r.Alg != k.Alg || r.Kid != k.ID || r.Payload.Sub != "alice" || r.Payload.CID != "acme" ||
			!slices.Equal(r.Payload.SIP.Methods, []string{"REGISTER", "INVITE", "MESSAGE"}) ||
			r.Payload.SIP.Dial == nil || !slices.Equal(r.Payload.SIP.Dial.Allow, []string{"+44*"}) {
			t.Errorf("jose verified the %s token as %+v", k.Alg, r)
		}
	}
	if r := results[3]; r.OK || r.Code != "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" {
		t.Errorf("jose on a tampered token: %+v, want ERR_JWS_SIGNATURE_VERIFICATION_FAILED", r)
	}
}

// TestChainVerifiesJOSETokens has the npm jose package mint an EdDSA token
// with a key of its own and checks that EdgeVerifier accepts it with the
// JWKS jose exported.
func TestChainVerifiesJOSETokens(t *testing.T) {
	testpeer.RequireNode(t)
	exp := t0.Unix() + 600
	out, err := testpeer.RunNode(t, "chain/testdata/jose_sign.mjs", nil,
		"https://issuer.example", "sip:trunk.example.net", "bob",
		strconv.FormatInt(t0.Unix(), 10), strconv.FormatInt(exp, 10),
		`{"cid":"acme","sip":{"methods":["REGISTER","INVITE"],"cidr":["203.0.113.0/24"]}}`)
	if err != nil {
		t.Fatalf("jose_sign.mjs: %v\n%s", err, out)
	}
	lines := jsonLines[struct {
		JWKS  json.RawMessage `json:"jwks"`
		Token string          `json:"token"`
	}](t, out)
	if len(lines) != 1 {
		t.Fatalf("jose_sign.mjs printed:\n%s", out)
	}
	set, err := ParseJWKS(lines[0].JWKS)
	if err != nil {
		t.Fatalf("ParseJWKS of jose's JWKS: %v", err)
	}
	v := &EdgeVerifier{Keys: set, Issuer: "https://issuer.example", Audience: "sip:trunk.example.net", MaxAge: 10 * time.Minute, Now: clock(t0.Add(30 * time.Second))}
	claims, err := v.Verify(lines[0].Token)
	if err != nil {
		t.Fatalf("EdgeVerifier refused jose's token: %v", err)
	}
	if claims.Subject != "bob" || claims.CID != "acme" || claims.ExpiresAt.Unix() != exp ||
		!slices.Equal(claims.SIP.Methods, []string{"REGISTER", "INVITE"}) || !slices.Equal(claims.SIP.CIDR, []string{"203.0.113.0/24"}) {
		t.Fatalf("claims = %+v", claims)
	}
	other := &EdgeVerifier{Keys: set, Issuer: "https://issuer.example", Audience: "sip:other.example.net", Now: clock(t0)}
	if _, err := other.Verify(lines[0].Token); !isErr(err, ErrAudience) {
		t.Fatalf("verify for another audience: %v, want ErrAudience", err)
	}
}
