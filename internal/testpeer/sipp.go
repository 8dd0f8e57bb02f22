package testpeer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SIPpTimeout bounds one RunSIPp call.
var SIPpTimeout = 60 * time.Second

// RequireSIPp returns the path of sipp (Debian package sip-tester).
func RequireSIPp(t testing.TB) string {
	t.Helper()
	return Require(t, "sipp", "apt-get install sip-tester")
}

// RunSIPp runs sipp with args (bounded by SIPpTimeout) and returns its
// standard output and error. err is nil only when sipp exits 0, which
// it does when every call succeeded; exit status 1 means at least one call
// failed. Add -m, -timeout and -nostdin as usual; RunSIPp adds
// -nostdin when it is missing.
func RunSIPp(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin := RequireSIPp(t)
	if !hasArg(args, "-nostdin") {
		args = append([]string{"-nostdin"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), SIPpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir() // sipp writes its *_errors.log etc. into the cwd
	var out, errb SyncBuffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("sipp did not finish within %s: %w", SIPpTimeout, errors.Join(ctx.Err(), err))
	}
	return out.String(), errb.String(), err
}

func hasArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// SIPpCalls is the final call count of a SIPp run.
type SIPpCalls struct {
	Successful, Failed int
}

var (
	sippSuccess = regexp.MustCompile(`(?m)^\s*Successful call\s*\|\s*\d+\s*\|\s*(\d+)`)
	sippFailed  = regexp.MustCompile(`(?m)^\s*Failed call\s*\|\s*\d+\s*\|\s*(\d+)`)
)

// ParseSIPpCalls reads the cumulative successful and failed call counts
// from the final statistics screen SIPp prints on its standard output.
func ParseSIPpCalls(stdout string) (SIPpCalls, error) {
	s := sippSuccess.FindAllStringSubmatch(stdout, -1)
	f := sippFailed.FindAllStringSubmatch(stdout, -1)
	if len(s) == 0 || len(f) == 0 {
		return SIPpCalls{}, errors.New("no SIPp statistics screen in the output")
	}
	var c SIPpCalls
	c.Successful, _ = strconv.Atoi(s[len(s)-1][1])
	c.Failed, _ = strconv.Atoi(f[len(f)-1][1])
	return c, nil
}

// WriteInjectionFile writes a SIPp injection (-inf) file into
// t.TempDir() and returns its path. order is "SEQUENTIAL", "RANDOM" or
// "USER" (the first line of the file); each row becomes one line with
// its fields separated by ';' ([field0], [field1], …).
func WriteInjectionFile(t testing.TB, order string, rows [][]string) string {
	t.Helper()
	switch order {
	case "SEQUENTIAL", "RANDOM", "USER":
	default:
		t.Fatalf("testpeer: injection order %q: want SEQUENTIAL, RANDOM or USER", order)
	}
	var b strings.Builder
	b.WriteString(order)
	b.WriteByte('\n')
	for i, row := range rows {
		for j, f := range row {
			if strings.ContainsAny(f, ";\n\r") {
				t.Fatalf("testpeer: injection row %d field %d holds ';' or a newline: %q", i, j, f)
			}
		}
		b.WriteString(strings.Join(row, ";"))
		b.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "inject.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// SIPpScenario returns the absolute path of examples/sipp/<name>.
func SIPpScenario(t testing.TB, name string) string {
	t.Helper()
	return Example(t, "sipp", name)
}

// SIPp is a SIPp instance running in the background, typically a UAS
// (uas_trunk.xml) standing in for a trunk.
type SIPp struct {
	d *daemon
}

// StartSIPp starts sipp with args in the background (adding -nostdin) in
// a fresh t.TempDir() as working directory. It is stopped when the test
// ends if it is still running. Use -m to make it exit by itself and Wait
// to collect its result.
func StartSIPp(t testing.TB, args ...string) *SIPp {
	t.Helper()
	bin := RequireSIPp(t)
	if !hasArg(args, "-nostdin") {
		args = append([]string{"-nostdin"}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	return &SIPp{d: startDaemon(t, "sipp", cmd)}
}

// Wait waits at most timeout for sipp to exit and returns its output
// (standard output and error together) and exit error. If it is still
// running at the deadline it is stopped and an error is returned.
func (s *SIPp) Wait(timeout time.Duration) (string, error) {
	select {
	case <-s.d.done:
		return s.d.out.String(), s.d.err
	case <-time.After(timeout):
		s.d.stop()
		return s.d.out.String(), fmt.Errorf("sipp still running after %s", timeout)
	}
}

// Stop stops sipp (SIGTERM, then SIGKILL).
func (s *SIPp) Stop() { s.d.stop() }

// Output returns what sipp printed so far.
func (s *SIPp) Output() string { return s.d.out.String() }
