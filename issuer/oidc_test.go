package issuer_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestOIDCUnknownKidRefetchesAtMostEveryThirtySeconds: an id_token signed
// with a key the issuer has not seen makes it fetch the provider's JWKS
// again, but not more often than every 30 seconds.
func TestOIDCUnknownKidRefetchesAtMostEveryThirtySeconds(t *testing.T) {
	e := newEnv(t)
	idp := newOIDCProvider(t)
	e.provision("acme", map[string]any{"idps": []map[string]any{{"issuer": idp.srv.URL, "audience": "acme-client", "domains": []string{"acme.example"}}}})
	sso := func(tok string) int {
		return e.postJSON("/v1/token", map[string]any{"customer": "acme", "id_token": tok}, nil).status
	}
	if got := sso(idp.idToken(t, e.clock.now(), nil)); got != http.StatusOK {
		t.Fatalf("first id_token: %d", got)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp.key, idp.kid = key, "idp-key-2" // the provider rotates
	if got := sso(idp.idToken(t, e.clock.now(), nil)); got != http.StatusBadRequest {
		t.Errorf("unknown kid within 30 s of the last fetch: %d, want refused without a fetch", got)
	}
	e.clock.advance(31 * time.Second)
	if got := sso(idp.idToken(t, e.clock.now(), nil)); got != http.StatusOK {
		t.Errorf("unknown kid 31 s after the last fetch: %d, want a refetch", got)
	}
}

func TestOIDCRefusesOtherAlgorithms(t *testing.T) {
	e := newEnv(t)
	idp := newOIDCProvider(t)
	e.provision("acme", map[string]any{"idps": []map[string]any{{"issuer": idp.srv.URL, "audience": "acme-client", "domains": []string{"acme.example"}}}})
	claims := jwt.MapClaims{"iss": idp.srv.URL, "aud": "acme-client", "email": "carol@acme.example",
		"iat": e.clock.now().Unix(), "exp": e.clock.now().Add(time.Minute).Unix()}
	for name, tok := range map[string]func() string{
		"HS256 keyed with the public modulus": func() string {
			tk := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
			tk.Header["kid"] = idp.kid
			s, _ := tk.SignedString(idp.key.PublicKey.N.Bytes())
			return s
		},
		"none": func() string {
			tk := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
			tk.Header["kid"] = idp.kid
			s, _ := tk.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		},
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			r := e.at(t).postJSON("/v1/token", map[string]any{"customer": "acme", "id_token": tok()}, nil)
			if r.status != http.StatusBadRequest {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
}

// TestOIDCEmailClaimNeedsDomains: the local part of an email becomes the
// SIP user, so a provider without a domain list would let alice@anywhere
// act as the customer's alice.
func TestOIDCEmailClaimNeedsDomains(t *testing.T) {
	e := newEnv(t)
	idp := newOIDCProvider(t)
	r := e.postJSON("/v1/admin/customers", map[string]any{"id": "acme", "name": "Acme", "domain": "acme.trunk.example.net",
		"idps": []map[string]any{{"issuer": idp.srv.URL, "audience": "acme-client"}}}, admin())
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "domains") {
		t.Fatalf("customer with an email IdP and no domains: %d %s", r.status, r.body)
	}
}
