package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
	"github.com/trunkpass/trunkpass/issuer"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// run executes the trunkpass command with args and returns its output.
func run(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&out)
	rootCmd.SetArgs(args)
	err := rootCmd.ExecuteContext(ctx)
	return out.String(), err
}

// TestIssuerAndAdminCommands runs `trunkpass issuer` with generated secrets
// and drives it with `trunkpass admin`.
func TestIssuerAndAdminCommands(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	yaml := filepath.Join(dir, "issuer.yaml")
	os.WriteFile(yaml, []byte("listen: "+addr+"\nurl: http://"+addr+"\ndata: "+filepath.Join(dir, "data")+"\ntoken_ttl: 2m\n"), 0o600)
	t.Setenv("TRUNKPASS_EDGE_AUDIENCE", "sip:edge.test")

	// The issuer command writes its logs to the root command's error
	// output; keep them apart from the admin commands' output.
	logs := &testpeer.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	issuerCmd := newIssuerCommand()
	issuerCmd.SetErr(logs)
	issuerCmd.SetArgs([]string{"--config", yaml, "--rate_limit.per_source", "0"})
	go func() { done <- issuerCmd.ExecuteContext(ctx) }()
	var md issuer.Metadata
	for range 200 {
		res, err := http.Get("http://" + addr + "/.well-known/oauth-authorization-server")
		if err == nil {
			json.NewDecoder(res.Body).Decode(&md)
			res.Body.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if md.Issuer != "http://"+addr {
		cancel()
		t.Fatalf("issuer did not come up: %+v", md)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("issuer command: %v", err)
		}
		if strings.Contains(logs.String(), readFile(t, filepath.Join(dir, "data", "admin.token"))) {
			t.Error("the generated admin token is in the logs")
		}
	}()
	info, err := os.Stat(filepath.Join(dir, "data", "master.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("generated master key: %v %v", info, err)
	}
	tokenFile := filepath.Join(dir, "data", "admin.token")
	admin := func(args ...string) (string, error) {
		return run(t, context.Background(), append([]string{"admin", "--issuer", "http://" + addr, "--admin-token-file", tokenFile}, args...)...)
	}

	out, err := admin("customers", "create", "acme", "--domain", "acme.example", "--origin", "https://acme.example", "--max-ttl", "5m", "--methods", "REGISTER,INVITE")
	if err != nil || !strings.Contains(out, `"domain": "acme.example"`) || !strings.Contains(out, `"max_ttl": 300`) {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if _, err := admin("customers", "create", "acme", "--domain", "acme.example"); err == nil || !strings.Contains(err.Error(), "409 conflict") {
		t.Errorf("duplicate create: %v", err)
	}
	out, err = admin("secrets", "create", "acme", "--not-before", "0")
	var sec issuer.NewSecret
	if err != nil || json.Unmarshal([]byte(out), &sec) != nil || sec.Secret == "" {
		t.Fatalf("secret: %v\n%s", err, out)
	}
	// A token shows the layering: token_ttl from the file, edge.audience
	// from the environment (the customer allows more).
	claims := &chain.AssertionClaims{}
	claims.Issuer, claims.Subject, claims.Audience, claims.ID = "acme", "alice", []string{"http://" + addr}, "j1"
	claims.IssuedAt, claims.ExpiresAt = jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now().Add(time.Minute))
	assertion, _ := chain.MintAssertion(chain.Secret{ID: sec.ID, Customer: "acme", Value: []byte(sec.Secret)}, claims, "", false)
	res, err := http.Post("http://"+addr+"/v1/token", "application/json", strings.NewReader(`{"assertion":"`+assertion+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tr issuer.TokenResponse
	json.NewDecoder(res.Body).Decode(&tr)
	res.Body.Close()
	parsed, _, _ := jwt.NewParser().ParseUnverified(tr.AccessToken, &chain.EdgeClaims{})
	if ec, ok := parsed.Claims.(*chain.EdgeClaims); res.StatusCode != http.StatusOK || !ok || ec.Audience[0] != "sip:edge.test" || tr.ExpiresIn != 120 {
		t.Errorf("token: status %d, expires_in %d, claims %+v", res.StatusCode, tr.ExpiresIn, parsed)
	}

	out, err = admin("secrets", "list", "acme")
	if err != nil || strings.Contains(out, sec.Secret) || !strings.Contains(out, sec.ID) {
		t.Errorf("list secrets: %v\n%s", err, out)
	}
	if out, err = admin("customers", "update", "acme", "--name", "Acme Ltd"); err != nil || !strings.Contains(out, "Acme Ltd") {
		t.Errorf("update: %v\n%s", err, out)
	}
	if out, err = admin("edges", "create", "--name", "sbc"); err != nil || !strings.Contains(out, `"secret"`) {
		t.Errorf("edges create: %v\n%s", err, out)
	}
	if out, err = admin("keys", "rotate"); err != nil || !strings.Contains(out, `"state": "retired"`) {
		t.Errorf("rotate: %v\n%s", err, out)
	}
	if out, err = admin("secrets", "revoke", "acme", sec.ID); err != nil || !strings.Contains(out, `"revoked": true`) {
		t.Errorf("revoke: %v\n%s", err, out)
	}
	out, err = admin("audit")
	for _, action := range []string{"customer.create", "secret.create", "customer.update", "edge.create", "keys.rotate", "secret.revoke"} {
		if !strings.Contains(out, action) {
			t.Errorf("audit lacks %s: %v", action, err)
		}
	}
	if _, err := admin("customers", "delete", "acme"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := admin("customers", "get", "acme"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("get after delete: %v", err)
	}
	wrong := filepath.Join(dir, "wrong.token")
	os.WriteFile(wrong, []byte("not-the-admin-token\n"), 0o600)
	if _, err := run(t, context.Background(), "admin", "--issuer", "http://"+addr, "--admin-token-file", wrong, "customers", "list"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong admin token: %v", err)
	}
	if md.TokenEndpoint != "http://"+addr+"/oauth2/token" {
		t.Errorf("metadata %+v", md)
	}
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
