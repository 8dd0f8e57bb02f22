package verifier

import (
	"bytes"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestLogsAndMetricsNeverHoldTokens(t *testing.T) {
	is := newTestIssuer(t)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	e, err := New(testConfig(is.srv.URL), WithLogger(zerolog.New(&logs).Level(zerolog.DebugLevel)), WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	good := is.mint(t, nil)
	bad := good[:len(good)-4] + "AAAA"
	handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+bad))
	handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", "sip:bob@acme.example", "sip:bob@acme.example", visitor, "Authorization", "Bearer "+good))
	handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+good))

	t.Run("logs name the failure but not the token", func(t *testing.T) {
		out := logs.String()
		if !strings.Contains(out, "bad_signature") || !strings.Contains(out, "aor_mismatch") {
			t.Fatalf("logs do not say why:\n%s", out)
		}
		for _, secret := range []string{good, bad, good[strings.LastIndexByte(good, '.')+1:], string(ephemeralSecret)} {
			if strings.Contains(out, secret) {
				t.Fatal("a token or secret was logged")
			}
		}
	})
	t.Run("metrics count outcomes by authenticator and reason", func(t *testing.T) {
		if n := counter(t, reg, "trunkpass_edge_auth_total", "bearer", "bad_signature", "invalid"); n != 1 {
			t.Fatalf("invalid: %v", n)
		}
		if n := counter(t, reg, "trunkpass_edge_auth_total", "bearer", "aor_mismatch", "forbidden"); n != 1 {
			t.Fatalf("forbidden: %v", n)
		}
		if n := counter(t, reg, "trunkpass_edge_auth_total", "bearer", "", "ok"); n != 1 {
			t.Fatalf("ok: %v", n)
		}
		if n := counter(t, reg, "trunkpass_edge_register_total", "registered"); n != 1 {
			t.Fatalf("registered: %v", n)
		}
	})
}

func TestHSProfilesThroughTheEdge(t *testing.T) {
	cfg := testConfig("")
	cfg.Ephemeral.Secrets = nil
	secret := []byte("gold-profile-secret-0123456789")
	cfg.HSProfiles.Profiles = []HSProfileConfig{{
		Tag: "gold", Domain: "acme.example", Headers: map[string]string{"X-Tier": "gold"}, Methods: []string{"REGISTER"},
		Secrets: []HSSecretConfig{{ID: "s1", Secret: secret, NotBefore: time.Now().Add(-time.Hour)}},
	}}
	e := newTestEdge(t, cfg)
	mint := func(mod func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"tag": "gold", "sub": "alice", "aud": "sip:trunk.example.net", "iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
		return s
	}
	t.Run("a profile token registers", func(t *testing.T) {
		res := handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+mint(nil)))
		if res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("a token of an unknown tag is an invalid token", func(t *testing.T) {
		res := handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+mint(func(c jwt.MapClaims) { c["tag"] = "silver" })))
		if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), `error="invalid_token"`) {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("a method outside the profile is forbidden", func(t *testing.T) {
		res := handle(e, sipRequest(t, "INVITE", "sip:+441@trunk.example.net", alice, "sip:+441@trunk.example.net", visitor, "Authorization", "Bearer "+mint(nil)))
		if res.StatusCode != 403 || res.Reason != "Forbidden: method not allowed" {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
}

// counter reads a counter from reg by name and label values (in label
// name order).
func counter(t *testing.T, reg *prometheus.Registry, name string, values ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			byName := map[string]string{}
			for _, l := range m.GetLabel() {
				byName[l.GetName()] = l.GetValue()
			}
			names := make([]string, 0, len(byName))
			for n := range byName {
				names = append(names, n)
			}
			sort.Strings(names)
			if len(names) != len(values) {
				continue
			}
			for i, n := range names {
				if byName[n] != values[i] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestLiveIssuerRotationAndOutage: the edge finds the JWKS through the
// issuer's metadata, picks up a rotated key without restart, and keeps
// accepting tokens of cached keys while the issuer is down.
func TestLiveIssuerRotationAndOutage(t *testing.T) {
	is := newTestIssuer(t)
	e := newTestEdge(t, testConfig(is.srv.URL))
	register := func(tok string) int {
		return handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+tok)).StatusCode
	}
	if code := register(is.mint(t, nil)); code != 200 {
		t.Fatalf("first key: %d", code)
	}
	is.addKey(t, "ES256")
	if code := register(is.mint(t, nil)); code != 200 {
		t.Fatalf("rotated key: %d", code)
	}
	is.down.Store(true)
	if code := register(is.mint(t, nil)); code != 200 {
		t.Fatalf("cached key while the issuer is down: %d", code)
	}
	is.addKey(t, "EdDSA") // never fetched: the issuer is down
	if code := register(is.mint(t, nil)); code != 401 {
		t.Fatalf("unknown key while the issuer is down: %d", code)
	}
}
