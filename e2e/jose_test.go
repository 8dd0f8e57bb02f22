package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
	"github.com/trunkpass/trunkpass/issuer"
)

// joseResult is one line printed by testdata/jose_remote.mjs.
type joseResult struct {
	OK      bool           `json:"ok"`
	Kid     string         `json:"kid"`
	Alg     string         `json:"alg"`
	Payload map[string]any `json:"payload"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
}

// runJose runs testdata/jose_remote.mjs and returns one result per token.
func runJose(t *testing.T, issuerURL, audience string, tokens ...string) []joseResult {
	t.Helper()
	out, err := testpeer.RunNode(t, "e2e/testdata/jose_remote.mjs", nil, append([]string{issuerURL, audience}, tokens...)...)
	if err != nil {
		t.Fatalf("node jose_remote.mjs: %v\n%s", err, testpeer.Tail(out, 3000))
	}
	var res []joseResult
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // Node warnings (for example about experimental Ed25519)
		}
		var r joseResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("jose output line %q: %v", line, err)
		}
		res = append(res, r)
	}
	if len(res) != len(tokens) {
		t.Fatalf("jose printed %d results for %d tokens:\n%s", len(res), len(tokens), testpeer.Tail(out, 3000))
	}
	return res
}

// jwksKids fetches the issuer's JWKS over HTTP and returns its key ids.
func jwksKids(t *testing.T, r *runningIssuer) []string {
	t.Helper()
	resp, err := httpClient.Get(r.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET jwks.json: %v %s", err, resp.Status)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("jwks.json: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// checkClaims compares what jose verified with what the issuer returned.
func checkClaims(t *testing.T, got joseResult, tr *issuer.TokenResponse, c customer, user string, methods []string) {
	t.Helper()
	if !got.OK {
		t.Fatalf("jose rejected the edge token: %s: %s", got.Code, got.Message)
	}
	p := got.Payload
	if p["sub"] != user || p["cid"] != c.ID {
		t.Errorf("sub=%v cid=%v, want %s and %s", p["sub"], p["cid"], user, c.ID)
	}
	sip, _ := p["sip"].(map[string]any)
	if sip == nil {
		t.Fatalf("no sip claim in %v", p)
	}
	wantAOR := "sip:" + user + "@" + c.Domain
	if sip["aor"] != wantAOR || tr.SIP.URI != wantAOR {
		t.Errorf("sip.aor=%v, response sip.uri=%s, want %s", sip["aor"], tr.SIP.URI, wantAOR)
	}
	var gotMethods []string
	for _, m := range sip["methods"].([]any) {
		gotMethods = append(gotMethods, m.(string))
	}
	if !slices.Equal(gotMethods, methods) {
		t.Errorf("sip.methods=%v, want %v", gotMethods, methods)
	}
	// And exactly the claims the issuer signed (jose decoded the same JSON).
	_, issued := jwtParts(t, tr.AccessToken)
	if fmt.Sprint(issued) != fmt.Sprint(p) {
		t.Errorf("jose payload %v differs from the issued payload %v", p, issued)
	}
}

// tamperPayload replaces the token's payload with one naming another user,
// keeping the original signature.
func tamperPayload(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	_, p := jwtParts(t, token)
	p["sub"] = "mallory"
	b, _ := json.Marshal(p)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// tamperSignature changes one character in the middle of the signature.
func tamperSignature(token string) string {
	i := strings.LastIndexByte(token, '.') + 10
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// TestEdgeTokenVerifiesWithJose checks that edge tokens verify with npm
// jose, which finds the keys through the issuer's RFC 8414 metadata and
// JWKS, for every signing algorithm, across a key rotation, and that
// tampered tokens do not.
func TestEdgeTokenVerifiesWithJose(t *testing.T) {
	testpeer.RequireNode(t)
	methods := []string{"REGISTER", "INVITE", "ACK", "BYE", "CANCEL"}
	for _, alg := range []string{chain.AlgEdDSA, chain.AlgES256, chain.AlgRS256} {
		t.Run("tokens signed with "+alg+" verify with jose", func(t *testing.T) {
			r := startIssuer(t, func(c *issuer.Config) { c.SigningAlg = alg })
			c := r.provision(t, "acme", "acme.trunk.test", methods)
			tr := r.token(t, c, "alice")
			h, _ := jwtParts(t, tr.AccessToken)
			if h["alg"] != alg {
				t.Fatalf("token alg %v, want %s", h["alg"], alg)
			}
			before := jwksKids(t, r)

			// /next rotates the keys twice, so that the token it returns is
			// signed by a key generated after jose fetched the JWKS.
			var (
				mu      sync.Mutex
				next    *issuer.TokenResponse
				nextErr error
			)
			rot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				for range 2 {
					if nextErr = r.rotateKeys(); nextErr != nil {
						http.Error(w, nextErr.Error(), http.StatusInternalServerError)
						return
					}
				}
				if next, nextErr = r.postToken(r.assertion(t, c, "bob")); nextErr != nil {
					http.Error(w, nextErr.Error(), http.StatusInternalServerError)
					return
				}
				io.WriteString(w, next.AccessToken)
			}))
			defer rot.Close()

			res := runJose(t, r.url, r.cfg.Edge.Audience,
				tr.AccessToken,
				tamperPayload(t, tr.AccessToken),
				tamperSignature(tr.AccessToken),
				"@"+rot.URL+"/next",
			)

			t.Run("the issued token verifies with the claims the issuer granted", func(t *testing.T) {
				checkClaims(t, res[0], tr, c, "alice", methods)
				if res[0].Alg != alg || res[0].Kid != h["kid"] {
					t.Errorf("jose saw alg %s kid %s, want %s %v", res[0].Alg, res[0].Kid, alg, h["kid"])
				}
			})
			t.Run("a token with a changed payload is rejected", func(t *testing.T) {
				if res[1].OK || res[1].Code != "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" {
					t.Errorf("tampered payload: %+v", res[1])
				}
			})
			t.Run("a token with a changed signature is rejected", func(t *testing.T) {
				if res[2].OK || res[2].Code != "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" {
					t.Errorf("tampered signature: %+v", res[2])
				}
			})
			t.Run("a token from a key published after jose's first fetch verifies", func(t *testing.T) {
				mu.Lock()
				defer mu.Unlock()
				if nextErr != nil || next == nil {
					t.Fatalf("rotation endpoint: %v", nextErr)
				}
				nh, _ := jwtParts(t, next.AccessToken)
				kid, _ := nh["kid"].(string)
				if slices.Contains(before, kid) {
					t.Fatalf("the new token's key %s was already in the JWKS %v: nothing proves a refresh", kid, before)
				}
				if !slices.Contains(jwksKids(t, r), kid) {
					t.Fatalf("the new key %s is not published", kid)
				}
				checkClaims(t, res[3], next, c, "bob", methods)
				if res[3].Kid != kid {
					t.Errorf("jose saw kid %s, want %s", res[3].Kid, kid)
				}
			})
		})
	}
}
