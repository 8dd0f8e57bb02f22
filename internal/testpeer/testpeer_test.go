package testpeer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite examples/kamailio/kamailio.cfg from the template")

// ephemeral computes a legacy credential the way Kamailio auth_ephemeral
// and coturn expect it, independently of the chain package.
func ephemeral(h func() hash.Hash, secret, user string, expiry time.Time) (username, password string) {
	username = fmt.Sprintf("%d:%s", expiry.Unix(), user)
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestExampleKamailioConfig(t *testing.T) {
	want, err := RenderKamailioConfig(ExampleKamailioConfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(MustRepoRoot(t), "examples", "kamailio", "kamailio.cfg")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from kamailio.cfg.tmpl rendered with ExampleKamailioConfig; run go test ./internal/testpeer -run TestExampleKamailioConfig -update", path)
	}
	if kam, err := LookPath("kamailio"); err == nil && FindKamailioModules() == ExampleKamailioConfig.ModulePath {
		out, err := exec.Command(kam, "-c", "-f", path).CombinedOutput()
		if err != nil {
			t.Fatalf("kamailio -c rejects the example: %v\n%s", err, out)
		}
	}
}

func TestRenderKamailioConfig(t *testing.T) {
	base := ExampleKamailioConfig
	for _, tc := range []struct {
		sha, want string
	}{
		{"", ""}, {"sha1", ""},
		{"sha256", `modparam("auth_ephemeral", "sha_algorithm", 1)`},
		{"SHA-384", `modparam("auth_ephemeral", "sha_algorithm", 2)`},
		{"sha512", `modparam("auth_ephemeral", "sha_algorithm", 3)`},
	} {
		c := base
		c.SHA = tc.sha
		c.Secrets = []string{"new", "old"}
		b, err := RenderKamailioConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if tc.want == "" && strings.Contains(s, "sha_algorithm") {
			t.Errorf("%q: sha_algorithm set for SHA-1", tc.sha)
		}
		if tc.want != "" && !strings.Contains(s, tc.want) {
			t.Errorf("%q: missing %s", tc.sha, tc.want)
		}
		if i, j := strings.Index(s, `"secret", "new"`), strings.Index(s, `"secret", "old"`); i < 0 || j < 0 || i > j {
			t.Errorf("secrets missing or out of order")
		}
	}
	bad := base
	bad.Secrets = []string{`x"y`}
	if _, err := RenderKamailioConfig(bad); err == nil {
		t.Error("a quote in a secret was accepted")
	}
	bad = base
	bad.SHA = "md5"
	if _, err := RenderKamailioConfig(bad); err == nil {
		t.Error("md5 accepted")
	}
}

func TestWriteInjectionFileAndParse(t *testing.T) {
	p := WriteInjectionFile(t, "SEQUENTIAL", [][]string{{"alice", "tok1"}, {"bob", "tok2"}})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "SEQUENTIAL\nalice;tok1\nbob;tok2\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	screen := "  Successful call        |        0                  |        7                 \n" +
		"  Failed call            |        1                  |        2                 \n"
	c, err := ParseSIPpCalls(screen)
	if err != nil || c != (SIPpCalls{Successful: 7, Failed: 2}) {
		t.Fatalf("ParseSIPpCalls = %+v, %v", c, err)
	}
}

func TestFreePort(t *testing.T) {
	for _, n := range []string{"udp", "tcp"} {
		if p := FreePort(t, n); p <= 0 || p > 65535 {
			t.Fatalf("%s port %d", n, p)
		}
	}
}

// registerDigest drives examples/sipp/register_digest.xml once.
func registerDigest(t *testing.T, k *Kamailio, user, username, password string) (SIPpCalls, string, error) {
	t.Helper()
	stdout, stderr, err := RunSIPp(t, k.Addr,
		"-sf", SIPpScenario(t, "register_digest.xml"),
		"-i", "127.0.0.1", "-p", fmt.Sprint(FreePort(t, "udp")),
		"-s", user, "-au", username, "-ap", password,
		"-m", "1", "-timeout", "15s", "-timeout_error")
	calls, perr := ParseSIPpCalls(stdout)
	if perr != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", perr, Tail(stdout, 3000), stderr)
	}
	return calls, stdout + stderr, err
}

func TestKamailioAuthEphemeral(t *testing.T) {
	t.Parallel()
	RequireSIPp(t)
	k := StartKamailio(t, KamailioOptions{Secrets: []string{"s3cret", "older"}})
	exp := time.Now().Add(10 * time.Minute)

	t.Run("valid", func(t *testing.T) {
		u, p := ephemeral(sha1.New, "s3cret", "alice", exp)
		calls, out, err := registerDigest(t, k, "alice", u, p)
		if err != nil || calls.Successful != 1 || calls.Failed != 0 {
			t.Fatalf("REGISTER with a valid credential: %+v, %v\n%s", calls, err, Tail(out, 3000))
		}
	})
	t.Run("older secret", func(t *testing.T) {
		u, p := ephemeral(sha1.New, "older", "alice", exp)
		calls, out, err := registerDigest(t, k, "alice", u, p)
		if err != nil || calls.Successful != 1 {
			t.Fatalf("REGISTER with the second secret: %+v, %v\n%s", calls, err, Tail(out, 3000))
		}
	})
	for name, tc := range map[string]struct{ user, secret, as string }{
		"wrong password": {"alice", "not-the-secret", "alice"},
		"other user":     {"bob", "s3cret", "alice"}, // bob's credential, alice's AOR
	} {
		t.Run(name, func(t *testing.T) {
			u, p := ephemeral(sha1.New, tc.secret, tc.user, exp)
			calls, out, err := registerDigest(t, k, tc.as, u, p)
			if err == nil || calls.Successful != 0 || calls.Failed != 1 {
				t.Fatalf("REGISTER accepted: %+v, %v\n%s", calls, err, Tail(out, 3000))
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		u, p := ephemeral(sha1.New, "s3cret", "alice", time.Now().Add(-time.Minute))
		calls, out, err := registerDigest(t, k, "alice", u, p)
		if err == nil || calls.Successful != 0 {
			t.Fatalf("expired credential accepted: %+v, %v\n%s", calls, err, Tail(out, 3000))
		}
	})
	if !strings.Contains(k.Output(), "rejected") {
		t.Errorf("kamailio logged no rejection:\n%s", Tail(k.Output(), 3000))
	}
}

func TestKamailioSHA256(t *testing.T) {
	t.Parallel()
	RequireSIPp(t)
	k := StartKamailio(t, KamailioOptions{Secrets: []string{"s3cret"}, SHA: "sha256"})
	exp := time.Now().Add(10 * time.Minute)
	u, p := ephemeral(sha256.New, "s3cret", "carol", exp)
	if calls, out, err := registerDigest(t, k, "carol", u, p); err != nil || calls.Successful != 1 {
		t.Fatalf("HMAC-SHA256 credential refused: %+v, %v\n%s", calls, err, Tail(out, 3000))
	}
	u, p = ephemeral(sha1.New, "s3cret", "carol", exp)
	if calls, out, err := registerDigest(t, k, "carol", u, p); err == nil || calls.Successful != 0 {
		t.Fatalf("HMAC-SHA1 credential accepted by a SHA-256 registrar: %+v\n%s", calls, Tail(out, 3000))
	}
}

func TestCoturnRESTCredentials(t *testing.T) {
	t.Parallel()
	port := StartCoturn(t, "s3cret")
	exp := time.Now().Add(10 * time.Minute)
	u, p := ephemeral(sha1.New, "s3cret", "alice", exp)
	out, err := TURNRelay(t, port, u, p)
	if err != nil || strings.Contains(out, "ERROR") || !strings.Contains(out, "tot_recv_msgs=") {
		t.Fatalf("allocation with a valid credential failed: %v\n%s", err, Tail(out, 3000))
	}
	if strings.Contains(out, "tot_recv_msgs=0\n") || !strings.Contains(out, "Total lost packets 0 ") {
		t.Fatalf("nothing relayed:\n%s", Tail(out, 3000))
	}

	_, bad := ephemeral(sha1.New, "wrong", "alice", exp)
	out, err = TURNRelay(t, port, u, bad)
	if err == nil || !strings.Contains(out, "Cannot complete Allocation") {
		t.Fatalf("allocation with a wrong password: err=%v\n%s", err, Tail(out, 3000))
	}

	u, p = ephemeral(sha1.New, "s3cret", "alice", time.Now().Add(-time.Minute))
	out, err = TURNRelay(t, port, u, p)
	if err == nil {
		t.Fatalf("allocation with an expired credential succeeded:\n%s", Tail(out, 3000))
	}
}

// TestExampleCoturnConfig checks that examples/coturn/turnserver.conf
// documents the settings StartCoturn runs turnserver with.
func TestExampleCoturnConfig(t *testing.T) {
	b, err := os.ReadFile(Example(t, "coturn", "turnserver.conf"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines[strings.SplitN(l, "=", 2)[0]] = true
		}
	}
	for _, k := range []string{"listening-ip", "relay-ip", "listening-port", "use-auth-secret",
		"static-auth-secret", "realm", "no-tls", "no-dtls", "no-cli", "log-file", "simple-log"} {
		if !lines[k] {
			t.Errorf("turnserver.conf does not set %s", k)
		}
	}
}

// tbRecorder records Skipf/Fatalf instead of acting on them.
type tbRecorder struct {
	testing.TB
	skipped, failed string
}

func (r *tbRecorder) Helper() {}
func (r *tbRecorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *tbRecorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRequireMissing(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &tbRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Require(r, "trunkpass-no-such-program", "apt-get install nothing")
		}()
		<-done
		if ci == "true" && (r.failed == "" || r.skipped != "") {
			t.Errorf("CI=true: failed=%q skipped=%q, want a failure", r.failed, r.skipped)
		}
		if ci == "" && (r.skipped == "" || r.failed != "" || !strings.Contains(r.skipped, "not installed: apt-get install nothing")) {
			t.Errorf("CI unset: failed=%q skipped=%q, want a skip with the hint", r.failed, r.skipped)
		}
	}
	if p := Require(t, "sh", "coreutils"); !filepath.IsAbs(p) {
		t.Errorf("Require(sh) = %q", p)
	}
}

func TestRunNode(t *testing.T) {
	code := `const JsSIP = require('jssip'); const WS = require('ws');
import('jose').then(j => console.log('jssip ' + JsSIP.version + ' ws ' + typeof WS + ' jose ' + typeof j.jwtVerify + ' ' + process.env.TP_X + ' ' + process.argv[1]));`
	out, err := RunNode(t, "-e", map[string]string{"TP_X": "x42"}, code, "arg1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "jssip 3.13.") || !strings.Contains(out, "ws function jose function x42 arg1") {
		t.Fatalf("unexpected output: %q", out)
	}
	// A script outside the repository finds the packages through NODE_PATH.
	script := filepath.Join(t.TempDir(), "s.js")
	if err := os.WriteFile(script, []byte(`require('jssip'); process.exit(3)`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = RunNode(t, script, nil)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("want exit status 3, got %v\n%s", err, out)
	}
}
