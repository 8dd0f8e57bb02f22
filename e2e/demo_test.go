package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
	"github.com/trunkpass/trunkpass/issuer"
)

// The demo's documented default ports (SPEC §5).
const (
	demoIssuerPort = 8080
	demoSitePort   = 8081
	demoSIPPort    = 5060 // UDP and TCP
	demoWSPort     = 8088
	demoTrunkPort  = 5070 // UDP and TCP
)

// demoStartTimeout bounds compiling and starting the demo.
const demoStartTimeout = 6 * time.Minute

// readmeDemoCommand returns the fields of the first line of a ```sh block
// of README.md that runs `cmd/trunkpass demo`, without its comment.
func readmeDemoCommand(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inSh := false
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```"):
			inSh = !inSh && strings.TrimSpace(strings.TrimPrefix(trimmed, "```")) == "sh"
		case inSh && strings.Contains(line, "cmd/trunkpass demo"):
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			return strings.Fields(line)
		}
	}
	t.Fatal("README.md has no ```sh line running cmd/trunkpass demo")
	return nil
}

// demoPortsFree skips the test (fails it under CI=true) when a port the
// demo listens on by default is taken.
func demoPortsFree(t *testing.T) {
	t.Helper()
	var busy []string
	for _, p := range []int{demoIssuerPort, demoSitePort, demoSIPPort, demoWSPort, demoTrunkPort} {
		if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
			busy = append(busy, fmt.Sprintf("tcp %d", p))
		} else {
			l.Close()
		}
	}
	for _, p := range []int{demoSIPPort, demoTrunkPort} {
		if c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
			busy = append(busy, fmt.Sprintf("udp %d", p))
		} else {
			c.Close()
		}
	}
	if len(busy) > 0 {
		msg := "the demo's default ports are in use on 127.0.0.1: " + strings.Join(busy, ", ")
		if testpeer.InCI() {
			t.Fatal(msg + " (CI=true)")
		}
		t.Skip(msg)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// get fetches url and returns status, content type and up to 4 MB of body.
func get(url string) (int, string, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, err
}

// sipOptionsUDP sends one OPTIONS to addr over UDP from 127.0.0.1 and
// returns the status line of the first response (up to 3 tries, 2 s each).
func sipOptionsUDP(addr string) (string, error) {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	rnd := make([]byte, 8)
	rand.Read(rnd)
	id := hex.EncodeToString(rnd)
	req := fmt.Sprintf("OPTIONS sip:%[1]s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %[2]s;branch=z9hG4bK%[3]s;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:e2e@127.0.0.1>;tag=%[3]s\r\n"+
		"To: <sip:%[1]s>\r\n"+
		"Call-ID: e2e-%[3]s\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Contact: <sip:e2e@%[2]s>\r\n"+
		"Content-Length: 0\r\n\r\n", addr, local, id)
	buf := make([]byte, 65535)
	var last error
	for range 3 {
		if _, err := c.Write([]byte(req)); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := c.Read(buf)
			if err != nil {
				last = err
				break
			}
			line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			if strings.HasPrefix(line, "SIP/2.0 1") {
				continue // provisional: wait for the final response
			}
			if strings.HasPrefix(line, "SIP/2.0 ") && strings.Contains(string(buf[:n]), id) {
				return line, nil
			}
		}
	}
	return "", fmt.Errorf("no SIP response from %s: %w", addr, last)
}

// wsUpgrade opens a WebSocket handshake with subprotocol sip and returns
// the response.
func wsUpgrade(addr string) (*http.Response, error) {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// The key and accept value of RFC 6455 section 1.3.
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Protocol: sip\r\nOrigin: http://127.0.0.1:%d\r\n\r\n", addr, demoSitePort)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// TestReadmeDemoCommand runs the README's demo command as a user would,
// on the documented default ports, and checks every part answers, that
// demo.json holds what SPEC §5 lists, and that Ctrl-C stops it all.
func TestReadmeDemoCommand(t *testing.T) {
	root := testpeer.MustRepoRoot(t)
	args := readmeDemoCommand(t, root)
	if len(args) < 3 || args[0] != "go" || args[len(args)-1] != "demo" {
		t.Fatalf("README demo command %q: want `go run ./cmd/trunkpass demo`", strings.Join(args, " "))
	}
	goBin := testpeer.Require(t, "go", "install Go")
	demoPortsFree(t)

	tmp := t.TempDir()
	cmd := exec.Command(goBin, args[1:]...)
	cmd.Dir = root
	// TMPDIR: the demo's default data directory (and go run's build
	// directory) land in the test's temporary directory.
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that an interrupt reaches both go run and
	// the program it built, as Ctrl-C in a terminal does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		// Anything of the group that outlived go run.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("demo output:\n%s", testpeer.Tail(out.String(), 6000))
		}
	})

	issuerURL := fmt.Sprintf("http://127.0.0.1:%d", demoIssuerPort)
	siteURL := fmt.Sprintf("http://127.0.0.1:%d", demoSitePort)
	dataRe := regexp.MustCompile(`Everything above is in (\S+demo\.json)`)

	// Wait for the issuer's health and the printed summary, which comes
	// after every socket is open and demo.json is written.
	deadline := time.Now().Add(demoStartTimeout)
	var demoJSON string
	for {
		if m := dataRe.FindStringSubmatch(out.String()); m != nil {
			if code, _, _, err := get(issuerURL + "/healthz"); err == nil && code == http.StatusOK {
				demoJSON = m[1]
				break
			}
		}
		select {
		case err := <-done:
			exited = true
			t.Fatalf("the demo exited before it was ready: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo was not ready after %s", demoStartTimeout)
		}
	}

	t.Run("the issuer is healthy and publishes its keys", func(t *testing.T) {
		code, _, body, err := get(issuerURL + "/healthz")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /healthz: %d %v", code, err)
		}
		code, _, body, err = get(issuerURL + "/.well-known/jwks.json")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET jwks.json: %d %v", code, err)
		}
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) == 0 {
			t.Fatalf("jwks.json %s: %v", body, err)
		}
	})

	t.Run("the customer site serves the JsSIP page", func(t *testing.T) {
		code, ct, body, err := get(siteURL + "/")
		if err != nil || code != http.StatusOK || !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("GET /: %d %q %v", code, ct, err)
		}
		if !bytes.Contains(body, []byte(`<script src="/static/jssip.min.js">`)) {
			t.Fatalf("GET / does not load JsSIP:\n%s", testpeer.Tail(string(body), 2000))
		}
		code, ct, body, err = get(siteURL + "/static/jssip.min.js")
		if err != nil || code != http.StatusOK || !strings.Contains(ct, "javascript") {
			t.Fatalf("GET /static/jssip.min.js: %d %q %v", code, ct, err)
		}
		if !bytes.Contains(body, []byte("JsSIP")) {
			t.Fatalf("jssip.min.js (%d bytes) does not define JsSIP", len(body))
		}
	})

	t.Run("the edge answers OPTIONS over UDP", func(t *testing.T) {
		line, err := sipOptionsUDP(fmt.Sprintf("127.0.0.1:%d", demoSIPPort))
		if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
			t.Fatalf("OPTIONS to the edge: %q %v", line, err)
		}
	})

	t.Run("the edge accepts a SIP WebSocket", func(t *testing.T) {
		resp, err := wsUpgrade(fmt.Sprintf("127.0.0.1:%d", demoWSPort))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols ||
			resp.Header.Get("Sec-WebSocket-Protocol") != "sip" ||
			resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("WebSocket upgrade: %s %v", resp.Status, resp.Header)
		}
	})

	t.Run("the echo trunk answers OPTIONS over UDP", func(t *testing.T) {
		line, err := sipOptionsUDP(fmt.Sprintf("127.0.0.1:%d", demoTrunkPort))
		if err != nil || !strings.HasPrefix(line, "SIP/2.0 ") {
			t.Fatalf("OPTIONS to the trunk: %q %v", line, err)
		}
	})

	t.Run("demo.json holds the SPEC keys and a working secret", func(t *testing.T) {
		if rel, err := filepath.Rel(tmp, demoJSON); err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("demo.json %s is not under TMPDIR %s", demoJSON, tmp)
		}
		b, err := os.ReadFile(demoJSON)
		if err != nil {
			t.Fatal(err)
		}
		var info map[string]any
		if err := json.Unmarshal(b, &info); err != nil {
			t.Fatalf("demo.json: %v", err)
		}
		str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
		for _, k := range []string{"issuer_url", "site_url", "admin_token", "customer", "secret_id", "secret", "domain", "echo_uri"} {
			if str(info, k) == "" {
				t.Errorf("demo.json: %s missing or empty", k)
			}
		}
		edge, _ := info["edge"].(map[string]any)
		for _, k := range []string{"udp", "ws"} {
			if str(edge, k) == "" {
				t.Errorf("demo.json: edge.%s missing or empty", k)
			}
		}
		if t.Failed() {
			t.Fatalf("demo.json:\n%s", b)
		}
		want := map[string]string{
			str(info, "issuer_url"): issuerURL,
			str(edge, "udp"):        fmt.Sprintf("127.0.0.1:%d", demoSIPPort),
			str(edge, "ws"):         fmt.Sprintf("ws://127.0.0.1:%d", demoWSPort),
		}
		for got, w := range want {
			if got != w {
				t.Errorf("demo.json has %q where %q was expected", got, w)
			}
		}
		if !strings.HasPrefix(str(info, "site_url"), siteURL) {
			t.Errorf("demo.json site_url %q, want %s/", str(info, "site_url"), siteURL)
		}

		// The printed secret is the demo customer's: an assertion made with
		// it is exchanged for an edge token.
		r := &runningIssuer{url: issuerURL, cfg: issuer.Config{URL: issuerURL}}
		now := time.Now()
		claims := &chain.AssertionClaims{}
		claims.Issuer, claims.Subject, claims.Audience = str(info, "customer"), "visitor", []string{issuerURL}
		claims.ID = rand.Text()
		claims.IssuedAt = jwt.NewNumericDate(now)
		claims.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
		a, err := chain.MintAssertion(chain.Secret{ID: str(info, "secret_id"), Customer: str(info, "customer"),
			Value: []byte(str(info, "secret"))}, claims, "HS256", false)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := r.postToken(a)
		if err != nil {
			t.Fatal(err)
		}
		if want := "sip:visitor@" + str(info, "domain"); tr.SIP.URI != want {
			t.Errorf("token for %s, want %s", tr.SIP.URI, want)
		}
	})

	// Ctrl-C: SIGINT to the whole group, as a terminal does.
	mark := len(out.String())
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		// go run itself always exits 1 once it has seen an interrupt (its
		// build workers set that status), whatever the program's status.
		// The program's own failures show in the output instead: go run
		// prints "exit status N" when the program exits non-zero, the demo
		// prints "trunkpass: <error>", the runtime "panic:".
		var ee *exec.ExitError
		if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) {
			t.Errorf("go run ended with %v after SIGINT", err)
		}
		after := out.String()[mark:]
		for _, bad := range []string{"exit status", "trunkpass:", "panic:", "DATA RACE"} {
			if strings.Contains(after, bad) {
				t.Errorf("the demo did not stop cleanly on SIGINT (%q in its output):\n%s", bad, testpeer.Tail(after, 3000))
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo still runs 30 s after SIGINT")
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("a process of the demo's group is still alive after go run exited (kill 0: %v)", err)
	}

	t.Run("nothing is left listening after the demo exits", func(t *testing.T) {
		for _, p := range []int{demoIssuerPort, demoSitePort, demoSIPPort, demoWSPort, demoTrunkPort} {
			l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Errorf("tcp %d still taken: %v", p, err)
				continue
			}
			l.Close()
		}
		for _, p := range []int{demoSIPPort, demoTrunkPort} {
			c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Errorf("udp %d still taken: %v", p, err)
				continue
			}
			c.Close()
		}
	})
}
