package issuer_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// FuzzTokenEndpoints posts arbitrary bodies with arbitrary content types
// to the token, introspection and revocation endpoints: whatever arrives,
// the answer is never a 5xx.
func FuzzTokenEndpoints(f *testing.F) {
	cfg := testConfig(f)
	cfg.URL = "http://127.0.0.1:1"
	iss, err := issuer.New(cfg, issuer.WithStore(store.NewMemory()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { iss.Close() })
	h := iss.Handler()
	for _, seed := range []struct {
		path, ctype, body string
	}{
		{"/v1/token", "application/json", `{"assertion":"a.b.c"}`},
		{"/v1/token", "application/json", `{"customer":"acme","username":"1:a","password":"x"}`},
		{"/v1/token", "application/x-www-form-urlencoded", "grants=%7B%22cidr%22%3A%5B1%5D%7D&sub=a"},
		{"/oauth2/token", "application/x-www-form-urlencoded", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:id_token&customer=c"},
		{"/v1/introspect", "application/x-www-form-urlencoded", "token=eyJhbGciOiJub25lIn0.e30."},
		{"/v1/revoke", "application/x-www-form-urlencoded", "token=x"},
	} {
		f.Add(seed.path, seed.ctype, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, path, ctype string, body []byte) {
		switch path {
		case "/v1/token", "/oauth2/token", "/v1/introspect", "/v1/revoke":
		default:
			path = "/v1/token"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Basic YTpi")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", path, ctype, rec.Code, rec.Body)
		}
	})
}
