package issuer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Environment of the helper mode in which the test binary runs an issuer
// as a separate process, so a test can kill -9 it.
const (
	envServeData = "TRUNKPASS_TEST_ISSUER_DATA"
	envServeAddr = "TRUNKPASS_TEST_ISSUER_ADDR"
	envServeJTI  = "TRUNKPASS_TEST_ISSUER_JTI"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envServeData); dir != "" {
		serve(dir, os.Getenv(envServeAddr))
		return
	}
	os.Exit(m.Run())
}

// serve runs an issuer on addr with its bolt store in dir until killed.
func serve(dir, addr string) {
	cfg := issuer.DefaultConfig()
	cfg.Data, cfg.Listen, cfg.URL = dir, addr, "http://"+addr
	if err := cfg.LoadSecrets(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mode := issuer.JTIBatch
	if os.Getenv(envServeJTI) == "group" {
		mode = issuer.JTIGroup
	}
	iss, err := issuer.New(cfg, issuer.WithLogger(zerolog.New(os.Stderr)), issuer.WithJTIPersistence(mode))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv := &http.Server{Addr: addr, Handler: iss.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	iss.Close()
}

// startProcess runs the issuer in a child process and waits until it
// answers /healthz (bounded: 200 tries of 25 ms).
func startProcess(t *testing.T, dir, addr string, extraEnv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Env = append(cmd.Env, envServeData+"="+dir, envServeAddr+"="+addr,
		issuer.EnvAdminToken+"="+adminToken,
		issuer.EnvMasterKey+"="+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for range 200 {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return cmd
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("issuer process did not start: %s", stderr.String())
	return nil
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestAcknowledgedWritesSurviveKill9 creates a customer and a secret over
// HTTP, kills the issuer with SIGKILL right after the 201, restarts it on
// the same data directory, and finds the customer, a working secret and
// the same signing keys. The secret is not in the data files in plaintext.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	e := &env{t: t, url: "http://" + addr, clock: &clock{}, logs: &testpeer.SyncBuffer{}, cfg: issuer.DefaultConfig(), seen: new([]string)}

	cmd := startProcess(t, dir, addr)
	keysBefore := e.do(http.MethodGet, "/.well-known/jwks.json", nil, nil).body
	s := e.provision("acme", nil)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	cmd = startProcess(t, dir, addr)
	if r := e.do(http.MethodGet, "/v1/admin/customers/acme", nil, admin()); r.status != http.StatusOK {
		t.Fatalf("customer lost: %d %s", r.status, r.body)
	}
	if got := e.do(http.MethodGet, "/.well-known/jwks.json", nil, nil).body; !bytes.Equal(got, keysBefore) {
		t.Errorf("signing keys changed across restart:\n%s\n%s", keysBefore, got)
	}
	tr := e.token(map[string]any{"assertion": e.assertion(s, "alice", nil)})
	if _, err := e.verify(tr.AccessToken); err != nil {
		t.Errorf("token after restart: %v", err)
	}

	// An assertion used just before a crash stays refused after it.
	used := e.assertion(s, "bob", nil)
	e.token(map[string]any{"assertion": used})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	startProcess(t, dir, addr)
	if r := e.postJSON("/v1/token", map[string]any{"assertion": used}, nil); r.status != http.StatusBadRequest {
		t.Errorf("replay after crash: %d %s", r.status, r.body)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s.Secret)) {
			t.Errorf("%s holds the customer secret in plaintext", f)
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", f)
		}
	}
}

// TestGroupPersistedJTIsStayOnceOnly runs the issuer with JTIGroup
// persistence: tokens do not wait for the store. After a crash, assertions
// issued before the restart are refused (their ids may have been lost);
// after a clean shutdown, used ids are remembered and unused assertions
// still work.
func TestGroupPersistedJTIsStayOnceOnly(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	e := &env{t: t, url: "http://" + addr, clock: &clock{}, logs: &testpeer.SyncBuffer{}, cfg: issuer.DefaultConfig(), seen: new([]string)}
	group := envServeJTI + "=group"
	later := func(c *chain.AssertionClaims) { // issued after the restart's second
		c.IssuedAt = jwt.NewNumericDate(e.clock.now().Add(2 * time.Second))
		c.ExpiresAt = jwt.NewNumericDate(e.clock.now().Add(time.Minute))
	}
	refused := func(tok, why string) {
		t.Helper()
		if r := e.postJSON("/v1/token", map[string]any{"assertion": tok}, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", why, r.status, r.body)
		}
	}

	cmd := startProcess(t, dir, addr, group)
	s := e.provision("acme", nil)
	used := e.assertion(s, "alice", nil)
	unused := e.assertion(s, "bob", nil)
	e.token(map[string]any{"assertion": used})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	cmd = startProcess(t, dir, addr, group)
	refused(used, "an assertion used before the crash")
	refused(unused, "an assertion issued before the crash")
	fresh := e.assertion(s, "carol", later)
	e.token(map[string]any{"assertion": fresh})
	notYet := e.assertion(s, "dave", later)

	cmd.Process.Signal(syscall.SIGTERM) // a clean shutdown writes every used id
	cmd.Wait()
	startProcess(t, dir, addr, group)
	refused(fresh, "an assertion used before a clean restart")
	e.token(map[string]any{"assertion": notYet}) // unused, issued before a clean restart: fine
}

// failingJTIStore is a memory store whose bulk jti writes fail.
type failingJTIStore struct{ *store.Memory }

func (failingJTIStore) PutJTIs(context.Context, []store.UsedJTI) error {
	return errors.New("disk full")
}

// groupIssuer runs an issuer in group jti mode on st, without HTTP, with
// customer acme and one of its secrets; mint makes a fresh assertion with
// that secret.
func groupIssuer(t *testing.T, st store.Store) (iss *issuer.Issuer, cfg issuer.Config, mint func() string) {
	t.Helper()
	ctx := context.Background()
	cfg = testConfig(t)
	cfg.URL = "http://127.0.0.1:1"
	iss, err := issuer.New(cfg, issuer.WithStore(st), issuer.WithJTIPersistence(issuer.JTIGroup), issuer.WithLogger(zerolog.Nop()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.CreateCustomer(ctx, store.Customer{ID: "acme", Domain: "acme.example"}); err != nil {
		t.Fatal(err)
	}
	s, err := iss.CreateSecret(ctx, "acme", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return iss, cfg, func() string {
		claims := &chain.AssertionClaims{}
		claims.Issuer, claims.Subject, claims.ID, claims.Audience = "acme", "alice", rand.Text(), []string{cfg.URL}
		claims.IssuedAt, claims.ExpiresAt = jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now().Add(time.Minute))
		tok, err := chain.MintAssertion(chain.Secret{ID: s.ID, Customer: "acme", Value: []byte(s.Secret)}, claims, "", false)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// If the used ids cannot be written at shutdown, Close says so and the run
// is not marked clean: the next start refuses every assertion issued
// before it, so the lost ids cannot be replayed.
func TestUnwrittenJTIsLeaveTheRunUnclean(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	iss, cfg, mint := groupIssuer(t, failingJTIStore{mem})
	used, unused := mint(), mint()
	if _, err := iss.Issue(ctx, &issuer.TokenRequest{Assertion: used}); err != nil {
		t.Fatal(err)
	}
	if err := iss.Close(); err == nil || !strings.Contains(err.Error(), "1 used assertion ids not written") {
		t.Fatalf("close = %v, want the unwritten id named", err)
	}

	next, err := issuer.New(cfg, issuer.WithStore(mem), issuer.WithJTIPersistence(issuer.JTIGroup), issuer.WithLogger(zerolog.Nop()))
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	for name, tok := range map[string]string{"used": used, "unused": unused} {
		if _, err := next.Issue(ctx, &issuer.TokenRequest{Assertion: tok}); !errors.Is(err, issuer.ErrReplay) {
			t.Errorf("%s assertion issued before the unclean stop: %v, want ErrReplay", name, err)
		}
	}
}

// Once Close has begun, no token is issued with a jti the final commit
// could miss: the request is refused as the issuer shutting down (503).
func TestNoTokenAfterClose(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	iss, _, mint := groupIssuer(t, mem)
	tok := mint()
	if err := iss.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Issue(ctx, &issuer.TokenRequest{Assertion: tok}); !errors.Is(err, issuer.ErrClosed) {
		t.Fatalf("token after Close: %v, want ErrClosed", err)
	}
	if run, _ := mem.Meta(ctx, "run"); string(run) != "clean" {
		t.Fatalf("run = %q after a clean Close, want clean", run)
	}
}
