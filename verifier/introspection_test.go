package verifier

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIntrospectionThroughTheEdge configures introspection.url, client_id
// and client_secret against an RFC 7662 server, next to the issuer's JWKS
// (the default configuration names an issuer): opaque tokens are
// introspected, inactive ones get invalid_token, and answers are cached
// no longer than their exp.
func TestIntrospectionThroughTheEdge(t *testing.T) {
	is := newTestIssuer(t)
	var mu sync.Mutex
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	exp := now.Add(time.Minute)
	var asked atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != "edge-1" || secret != "edge-1-secret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		answer := map[string]any{"active": false}
		if r.PostFormValue("token") == "opaque-good" {
			answer = map[string]any{"active": true, "sub": "alice", "iss": is.srv.URL, "aud": "sip:trunk.example.net",
				"iat": now.Unix(), "exp": exp.Unix(), "cid": "acme"}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(as.Close)
	cfg := testConfig(is.srv.URL)
	cfg.Introspection = IntrospectionConfig{URL: as.URL, ClientID: "edge-1", ClientSecret: "edge-1-secret"}
	e, err := New(cfg, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	register := func(token string) (int, string) {
		res := handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+token))
		return res.StatusCode, strings.Join(headerValues(res, "WWW-Authenticate"), " | ")
	}

	t.Run("an opaque token registers after one introspection", func(t *testing.T) {
		if code, _ := register("opaque-good"); code != 200 {
			t.Fatalf("status %d", code)
		}
		if n := asked.Load(); n != 1 {
			t.Fatalf("%d introspection requests", n)
		}
	})
	t.Run("the answer is cached until exp", func(t *testing.T) {
		mu.Lock()
		now = exp.Add(-time.Second)
		mu.Unlock()
		if code, _ := register("opaque-good"); code != 200 {
			t.Fatalf("status %d", code)
		}
		if n := asked.Load(); n != 1 {
			t.Fatalf("%d introspection requests, want the cached answer", n)
		}
	})
	t.Run("after exp and the leeway the token is asked about again and refused", func(t *testing.T) {
		mu.Lock()
		now = exp.Add(cfg.Leeway)
		mu.Unlock()
		code, chal := register("opaque-good")
		if code != 401 || !strings.Contains(chal, `error="invalid_token"`) {
			t.Fatalf("status %d, challenge %q", code, chal)
		}
		if n := asked.Load(); n != 2 {
			t.Fatalf("%d introspection requests, want 2", n)
		}
	})
	t.Run("an inactive token gets 401 invalid_token", func(t *testing.T) {
		before := asked.Load()
		code, chal := register("opaque-revoked")
		if code != 401 || !strings.Contains(chal, `error="invalid_token"`) {
			t.Fatalf("status %d, challenge %q", code, chal)
		}
		if asked.Load() != before+1 {
			t.Fatal("the token was not introspected")
		}
	})
}
