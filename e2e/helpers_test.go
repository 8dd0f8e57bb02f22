package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// testAdminToken guards the admin API of the issuers started here.
const testAdminToken = "e2e-admin-token-0123456789abcdef"

// runningIssuer is an issuer served over real HTTP on 127.0.0.1.
type runningIssuer struct {
	iss *issuer.Issuer
	cfg issuer.Config
	url string // e.g. http://127.0.0.1:41234
}

// startIssuer starts an issuer on a fresh 127.0.0.1 port with an in-memory
// store. configure may change the configuration (secrets, TURN URLs, ...)
// before the issuer is built; the URL is already set to the listener's.
func startIssuer(t *testing.T, configure func(*issuer.Config)) *runningIssuer {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := issuer.DefaultConfig()
	cfg.Listen = ln.Addr().String()
	cfg.URL = "http://" + ln.Addr().String()
	cfg.Data = t.TempDir()
	cfg.AdminToken = []byte(testAdminToken)
	cfg.MasterKey = make([]byte, 32)
	rand.Read(cfg.MasterKey)
	if configure != nil {
		configure(&cfg)
	}
	iss, err := issuer.New(cfg, issuer.WithStore(store.NewMemory()))
	if err != nil {
		ln.Close()
		t.Fatalf("issuer.New: %v", err)
	}
	srv := &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		_ = iss.Close()
	})
	return &runningIssuer{iss: iss, cfg: cfg, url: cfg.URL}
}

// customer is a provisioned customer and one of its secrets.
type customer struct {
	ID, Domain string
	Secret     chain.Secret
}

// provision creates a customer with the given domain and SIP methods and
// a secret for it, through the Go API.
func (r *runningIssuer) provision(t *testing.T, id, domain string, methods []string) customer {
	t.Helper()
	ctx := issuer.WithActor(context.Background(), "e2e")
	if _, err := r.iss.CreateCustomer(ctx, issuer.Customer{ID: id, Name: "End-to-end test", Domain: domain,
		SIP: chain.SIPGrant{Methods: methods}}); err != nil {
		t.Fatalf("CreateCustomer: %v", err)
	}
	sec, err := r.iss.CreateSecret(ctx, id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	return customer{ID: id, Domain: domain, Secret: chain.Secret{ID: sec.ID, Customer: id, Value: []byte(sec.Secret)}}
}

// assertion mints a customer assertion for user, as a customer backend
// does, valid for a minute.
func (r *runningIssuer) assertion(t testing.TB, c customer, user string) string {
	t.Helper()
	now := time.Now()
	claims := &chain.AssertionClaims{}
	claims.Issuer, claims.Subject, claims.Audience = c.ID, user, []string{r.cfg.URL}
	claims.ID = rand.Text()
	claims.IssuedAt = jwt.NewNumericDate(now)
	claims.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
	a, err := chain.MintAssertion(c.Secret, claims, "HS256", false)
	if err != nil {
		t.Fatalf("MintAssertion: %v", err)
	}
	return a
}

// httpClient bounds every request the tests make.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// postToken exchanges an assertion at POST /v1/token over HTTP.
func (r *runningIssuer) postToken(assertion string) (*issuer.TokenResponse, error) {
	body, _ := json.Marshal(map[string]string{"assertion": assertion})
	resp, err := httpClient.Post(r.url+"/v1/token", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/token: %s: %s", resp.Status, b)
	}
	var tr issuer.TokenResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("POST /v1/token: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("POST /v1/token: no access_token")
	}
	return &tr, nil
}

// token mints an assertion for user and exchanges it over HTTP.
func (r *runningIssuer) token(t *testing.T, c customer, user string) *issuer.TokenResponse {
	t.Helper()
	tr, err := r.postToken(r.assertion(t, c, user))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// rotateKeys calls POST /v1/admin/keys/rotate over HTTP.
func (r *runningIssuer) rotateKeys() error {
	req, err := http.NewRequest(http.MethodPost, r.url+"/v1/admin/keys/rotate", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /v1/admin/keys/rotate: %s: %s", resp.Status, b)
	}
	return nil
}

// jwtParts splits a compact JWS and decodes its header and payload.
func jwtParts(t *testing.T, token string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := jwt.NewParser().DecodeSegment(s)
		if err != nil {
			t.Fatalf("decode token segment: %v", err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("decode token segment: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}
