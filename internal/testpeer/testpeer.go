// Package testpeer starts and drives the real programs trunkpass must
// interoperate with (Kamailio, SIPp, coturn, Node with JsSIP) from Go tests.
//
// It is imported only by tests. A program that is not installed makes the
// test skip, with a hint of what to install, except under CI=true where it
// makes the test fail: CI machines must run every interoperability test.
// Every process is started on 127.0.0.1, bounded in time, and stopped when
// the test ends.
package testpeer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (env CI=true), where a
// missing peer program is a failure rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// missing fails the test under CI and skips it otherwise.
func missing(t testing.TB, what, installHint string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s not installed (CI=true, so this is an error): %s", what, installHint)
	}
	t.Skipf("%s not installed: %s", what, installHint)
}

// sbinDirs are searched after $PATH: Debian installs kamailio and some
// other daemons in /usr/sbin, which is not on an unprivileged user's PATH.
var sbinDirs = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// LookPath finds a program on $PATH or in the sbin directories.
func LookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	if strings.ContainsRune(bin, filepath.Separator) {
		return "", fmt.Errorf("%s: not found", bin)
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in $PATH or %s", bin, strings.Join(sbinDirs, ", "))
}

// Require returns the path of program bin. When it is missing the test
// fails under CI=true and is skipped otherwise, naming installHint (for
// example "apt-get install sip-tester").
func Require(t testing.TB, bin, installHint string) string {
	t.Helper()
	p, err := LookPath(bin)
	if err != nil {
		missing(t, bin, installHint)
	}
	return p
}

// RepoRoot returns the directory holding go.mod, found by walking up from
// the current directory (a package directory during go test).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the current directory")
		}
		dir = parent
	}
}

// MustRepoRoot is RepoRoot for tests.
func MustRepoRoot(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	return root
}

// Example returns the absolute path of a file under the repository's
// examples/ directory, for example Example(t, "sipp", "uas_trunk.xml").
func Example(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{MustRepoRoot(t), "examples"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	return p
}

// RequireNode returns the path of node after checking that the npm
// dependencies are installed in the repository root (node_modules); the
// same fail-under-CI-else-skip rule as Require applies.
func RequireNode(t testing.TB) string {
	t.Helper()
	node := Require(t, "node", "apt-get install nodejs (Node 20 or newer)")
	root := MustRepoRoot(t)
	if fi, err := os.Stat(filepath.Join(root, "node_modules")); err != nil || !fi.IsDir() {
		missing(t, "node_modules", "npm ci (in "+root+")")
	}
	return node
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago for
// network "udp" or "tcp". Another process may take it before the caller
// binds it; that is rare enough for tests.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "udp", "udp4":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testpeer: free udp port: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	case "tcp", "tcp4":
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testpeer: free tcp port: %v", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	default:
		t.Fatalf("testpeer: FreePort: unknown network %q (want udp or tcp)", network)
		return 0
	}
}

// FreeUDPTCPPort returns a port free on 127.0.0.1 for both UDP and TCP
// (SIP and TURN servers listen on both by default).
func FreeUDPTCPPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		p := FreePort(t, "tcp")
		c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			c.Close()
			return p
		}
	}
	t.Fatalf("testpeer: no port free for both udp and tcp")
	return 0
}

// SyncBuffer is a bytes.Buffer safe for a process or a logger writing and
// a test reading at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is a long-running peer process started in its own process group
// so that it and everything it forks can be stopped together.
type daemon struct {
	name string
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error // set before done is closed

	stopOnce sync.Once
}

func startDaemon(t testing.TB, name string, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{name: name, cmd: cmd, out: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = d.out
	cmd.Stderr = d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("testpeer: start %s: %v", name, err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, Tail(d.out.String(), 8000))
		}
	})
	return d
}

// exited reports whether the process has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s, and
// waits for the process.
func (d *daemon) stop() {
	d.stopOnce.Do(func() {
		if d.exited() {
			return
		}
		pgid := d.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-d.done
		}
		// Children that ignored SIGTERM and outlived the parent.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// Tail is the last n bytes of s, for failure messages.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// waitUDP sends probe to addr every 200 ms until accept returns true for a
// reply, the process exits, or timeout passes.
func waitUDP(d *daemon, addr string, timeout time.Duration, probe func() []byte, accept func([]byte) bool) error {
	deadline := time.Now().Add(timeout)
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 65535)
	for time.Now().Before(deadline) {
		if d.exited() {
			return fmt.Errorf("%s exited before it was ready: %v", d.name, d.err)
		}
		if _, err := c.Write(probe()); err != nil {
			// ICMP port unreachable from an earlier probe: not bound yet.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					time.Sleep(100 * time.Millisecond)
				}
				break
			}
			if accept(buf[:n]) {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not answering on udp %s after %s", d.name, addr, timeout)
}
