package verifier

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// The load benchmark of docs/benchmarks.md ("edge"). It runs only with
// TRUNKPASS_LOADTEST=1:
//
//	TRUNKPASS_LOADTEST=1 go test -run TestLoad -v -timeout 30m ./verifier/
//
// SIPp drives authenticated REGISTERs over UDP (-buff_size 4194304) at
// increasing rates against the edge (a separate trunkpass process: Bearer
// with 1000 distinct tokens, then Digest with ephemeral credentials) and
// against Kamailio auth_ephemeral with the same secret, and reports for
// each the highest rate with at least 99.9% successful calls and the
// server's CPU time per authenticated REGISTER. With
// TRUNKPASS_LOADTEST_BASELINE=<trunkpass binary> it also measures that
// binary's Digest rate in the same run.

func requireLoadTest(t *testing.T) {
	if os.Getenv("TRUNKPASS_LOADTEST") != "1" {
		t.Skip("load test: set TRUNKPASS_LOADTEST=1")
	}
	testpeer.RequireSIPp(t)
}

// edgeProcess is the trunkpass edge run as its own process.
type edgeProcess struct {
	cmd     *exec.Cmd
	udp     string
	metrics string
}

func buildTrunkpass(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "trunkpass")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/trunkpass")
	cmd.Dir = testpeer.MustRepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func startEdgeProcess(t *testing.T, bin, issuer string, extra ...string) *edgeProcess {
	udpPort := testpeer.FreePort(t, "udp")
	mPort := testpeer.FreePort(t, "tcp")
	p := &edgeProcess{udp: "127.0.0.1:" + strconv.Itoa(udpPort), metrics: "127.0.0.1:" + strconv.Itoa(mPort)}
	args := append([]string{"edge", "--listen", "udp://" + p.udp, "--issuer", issuer, "--upstream", "sip:127.0.0.1:9",
		"--metrics", p.metrics, "--log_level", "warn", "--rate_limit.failures_per_second", "0"}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "TRUNKPASS_EPHEMERAL_SECRET="+string(ephemeralSecret))
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGTERM); p.cmd.Wait() })
	for range 100 {
		if res, err := http.Get("http://" + p.metrics + "/healthz"); err == nil {
			res.Body.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("edge did not start")
	return nil
}

// cpuSeconds is the user+system CPU time of the processes pids.
func cpuSeconds(pids ...int) float64 {
	tick := 100.0 // USER_HZ on Linux
	total := 0.0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / tick
	}
	return total
}

// pidsNamed lists the processes whose command name is name.
func pidsNamed(name string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(b)) == name {
			out = append(out, pid)
		}
	}
	return out
}

func vmRSS(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(sc.Text(), "VmRSS:"))
		}
	}
	return "?"
}

type step struct {
	rate, calls, ok int
	seconds, cpu    float64
}

// ramp runs SIPp at increasing rates until fewer than 99.9% of calls
// succeed, and returns every step.
func ramp(t *testing.T, name string, rates []int, pids func() []int, args func(rate, calls int) []string) []step {
	var steps []step
	for _, r := range rates {
		n := r * 4
		before := cpuSeconds(pids()...)
		start := time.Now()
		stdout, stderr, _ := testpeer.RunSIPp(t, args(r, n)...)
		secs := time.Since(start).Seconds()
		cpu := cpuSeconds(pids()...) - before
		calls, err := testpeer.ParseSIPpCalls(stdout)
		if err != nil {
			t.Logf("%s at %d/s: %v", name, r, err)
			break
		}
		s := step{rate: r, calls: n, ok: calls.Successful, seconds: secs, cpu: cpu}
		steps = append(steps, s)
		t.Logf("%-16s offered %6d/s: %6d/%6d ok in %5.2fs = %6.0f/s achieved, server CPU %6.2fs = %5.1f µs per REGISTER",
			name, r, calls.Successful, n, secs, s.achieved(), cpu, cpu/float64(max(calls.Successful, 1))*1e6)
		if float64(calls.Successful) < 0.999*float64(n) {
			if os.Getenv("TRUNKPASS_LOADTEST_VERBOSE") != "" {
				t.Logf("sipp stderr:\n%s", testpeer.Tail(stderr, 1500))
			}
			break
		}
		time.Sleep(time.Second)
	}
	return steps
}

// achieved is the rate of successful calls the step sustained.
func (s step) achieved() float64 { return float64(s.ok) / s.seconds }

// best is the step with the highest achieved rate among those with at
// least 99.9% successful calls.
func best(steps []step) step {
	b := step{seconds: 1}
	for _, s := range steps {
		if float64(s.ok) >= 0.999*float64(s.calls) && s.achieved() > b.achieved() {
			b = s
		}
	}
	return b
}

func sippArgs(scenario string, extra ...string) func(rate, calls int) []string {
	return func(rate, calls int) []string {
		return append([]string{"-sf", scenario, "-t", "u1", "-i", "127.0.0.1", "-buff_size", "4194304",
			"-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls), "-l", strconv.Itoa(rate * 2), "-timeout", "60s",
			"-timeout_error", "-recv_timeout", "5000"}, extra...)
	}
}

func TestLoadRegister(t *testing.T) {
	requireLoadTest(t)
	testpeer.SIPpTimeout = 2 * time.Minute
	is := newTestIssuer(t)
	bin := buildTrunkpass(t)
	linger := os.Getenv("TRUNKPASS_LOADTEST_LINGER") // e.g. "4s"
	var extra []string
	if linger != "" {
		extra = []string{"--udp_linger", linger}
	}
	edge := startEdgeProcess(t, bin, is.srv.URL, extra...)
	edgePid := func() []int { return []int{edge.cmd.Process.Pid} }
	rates := []int{2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 24000, 28000}
	if s := os.Getenv("TRUNKPASS_LOADTEST_RATES"); s != "" {
		rates = nil
		for _, f := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(f)
			rates = append(rates, n)
		}
	}

	rows := make([][]string, 1000)
	for i := range rows {
		u := "user" + strconv.Itoa(i)
		c := is.claims(u)
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(50 * time.Minute))
		tok, err := chain.MintEdgeToken(is.key(), c)
		if err != nil {
			t.Fatal(err)
		}
		rows[i] = []string{tok, u, "acme.example"}
	}
	inf := testpeer.WriteInjectionFile(t, "SEQUENTIAL", rows)
	username, password, _ := chain.MintEphemeral(ephemeralSecret, "alice", time.Now().Add(2*time.Hour), chain.EphemeralFormat{})

	bearer := ramp(t, "edge Bearer", rates, edgePid, func(r, n int) []string {
		return append(sippArgs(testpeer.SIPpScenario(t, "register_bearer.xml"), "-inf", inf)(r, n), edge.udp)
	})
	rssAfterBearer := vmRSS(edge.cmd.Process.Pid)
	digestArgs := []string{"-s", "alice", "-au", username, "-ap", password}
	digest := ramp(t, "edge Digest", rates, edgePid, func(r, n int) []string {
		return append(sippArgs(testpeer.SIPpScenario(t, "register_digest.xml"), digestArgs...)(r, n), edge.udp)
	})
	rssAfter := vmRSS(edge.cmd.Process.Pid)
	edge.cmd.Process.Signal(syscall.SIGTERM)
	// TRUNKPASS_LOADTEST_BASELINE names another trunkpass binary (say, the
	// edge of an earlier commit) whose Digest rate is measured in the same
	// run, for a before/after comparison on a shared machine.
	var baseline []step
	if bin := os.Getenv("TRUNKPASS_LOADTEST_BASELINE"); bin != "" {
		base := startEdgeProcess(t, bin, is.srv.URL, extra...)
		baseline = ramp(t, "baseline Digest", rates, func() []int { return []int{base.cmd.Process.Pid} }, func(r, n int) []string {
			return append(sippArgs(testpeer.SIPpScenario(t, "register_digest.xml"), digestArgs...)(r, n), base.udp)
		})
		base.cmd.Process.Signal(syscall.SIGTERM)
	}

	k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Realm: "trunk.example.net", Secrets: []string{string(ephemeralSecret)}})
	kam := ramp(t, "Kamailio Digest", rates, func() []int { return pidsNamed("kamailio") }, func(r, n int) []string {
		return append(sippArgs(testpeer.SIPpScenario(t, "register_digest.xml"), digestArgs...)(r, n), k.Addr)
	})
	b, d, km := best(bearer), best(digest), best(kam)
	per := func(s step) float64 { return s.cpu / float64(max(s.ok, 1)) * 1e6 }
	t.Logf("RESULT machine: %d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel())
	t.Logf("RESULT edge Bearer   %6.0f/s achieved (offered %d/s, >=99.9%% ok), %5.1f µs CPU per REGISTER", b.achieved(), b.rate, per(b))
	t.Logf("RESULT edge Digest   %6.0f/s achieved (offered %d/s, >=99.9%% ok), %5.1f µs CPU per REGISTER (401 + 200)", d.achieved(), d.rate, per(d))
	t.Logf("RESULT Kamailio      %6.0f/s achieved (offered %d/s, >=99.9%% ok), %5.1f µs CPU per REGISTER (401 + 200)", km.achieved(), km.rate, per(km))
	if km.ok > 0 {
		t.Logf("RESULT ratio Bearer/Kamailio %.2f, Digest/Kamailio %.2f (achieved rates); CPU per REGISTER Kamailio/Bearer %.2f, Kamailio/Digest %.2f",
			b.achieved()/km.achieved(), d.achieved()/km.achieved(), per(km)/per(b), per(km)/per(d))
	}
	if len(baseline) > 0 {
		bl := best(baseline)
		t.Logf("RESULT baseline     %6.0f/s achieved (offered %d/s, >=99.9%% ok), %5.1f µs CPU per REGISTER (401 + 200)", bl.achieved(), bl.rate, per(bl))
		t.Logf("RESULT CPU per Digest REGISTER at equal offered rates (edge / baseline / Kamailio, µs):")
		for _, r := range rates {
			var cells [3]string
			for i, steps := range [][]step{digest, baseline, kam} {
				cells[i] = "-"
				for _, s := range steps {
					if s.rate == r && float64(s.ok) >= 0.999*float64(s.calls) {
						cells[i] = fmt.Sprintf("%.1f", per(s))
					}
				}
			}
			t.Logf("RESULT   %6d/s: %s / %s / %s", r, cells[0], cells[1], cells[2])
		}
	}
	t.Logf("RESULT edge VmRSS after Bearer run %s, after Digest run %s (udp_linger %q)", rssAfterBearer, rssAfter, linger)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
		}
	}
	return "unknown CPU"
}

// TestLoadRSS registers 100k distinct tokens through the edge process over
// UDP and reports its resident memory once the transactions have expired.
func TestLoadRSS(t *testing.T) {
	requireLoadTest(t)
	testpeer.SIPpTimeout = 5 * time.Minute
	is := newTestIssuer(t)
	bin := buildTrunkpass(t)
	linger := "5s"
	edge := startEdgeProcess(t, bin, is.srv.URL, "--udp_linger", linger, "--max_token_age", "2h")
	const n = 100_000
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f, _ := os.Create(path)
	w := bufio.NewWriter(f)
	w.WriteString("SEQUENTIAL\n")
	for i := range n {
		u := "visitor" + strconv.Itoa(i)
		c := is.claims(u)
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(55 * time.Minute))
		tok, err := chain.MintEdgeToken(is.key(), c)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "%s;%s;acme.example\n", tok, u)
	}
	w.Flush()
	f.Close()
	before := vmRSS(edge.cmd.Process.Pid)
	stdout, stderr, err := testpeer.RunSIPp(t, append(sippArgs(testpeer.SIPpScenario(t, "register_bearer.xml"), "-inf", path)(4000, n), edge.udp)...)
	calls, perr := testpeer.ParseSIPpCalls(stdout)
	if perr != nil || calls.Successful < n*999/1000 {
		t.Fatalf("%v %v %+v\n%s", err, perr, calls, testpeer.Tail(stderr, 2000))
	}
	time.Sleep(8 * time.Second) // transactions (udp_linger) expire
	res, _ := http.Get("http://" + edge.metrics + "/metrics")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var regs, heap string
	for _, l := range strings.Split(string(body), "\n") {
		switch {
		case strings.HasPrefix(l, "trunkpass_edge_registrations "):
			regs = strings.Fields(l)[1]
		case strings.HasPrefix(l, "go_memstats_heap_inuse_bytes "):
			heap = strings.Fields(l)[1]
		}
	}
	t.Logf("RESULT RSS: %d/%d REGISTERs ok, %s live registrations, VmRSS %s (before %s), Go heap in use %s bytes (udp_linger %s)",
		calls.Successful, n, regs, vmRSS(edge.cmd.Process.Pid), before, heap, linger)
}

// TestLoadDigestProfile drives Digest REGISTERs with SIPp against an edge
// in this process and writes a CPU profile of it, to find where a Digest
// REGISTER spends its time:
//
//	TRUNKPASS_LOADTEST=1 TRUNKPASS_LOADTEST_CPUPROFILE=/tmp/digest.pprof \
//	  go test -run TestLoadDigestProfile -v ./verifier/
//	go tool pprof -top /tmp/digest.pprof
func TestLoadDigestProfile(t *testing.T) {
	requireLoadTest(t)
	path := os.Getenv("TRUNKPASS_LOADTEST_CPUPROFILE")
	if path == "" {
		t.Skip("set TRUNKPASS_LOADTEST_CPUPROFILE to the profile's path")
	}
	testpeer.SIPpTimeout = 2 * time.Minute
	is := newTestIssuer(t)
	e := startEdge(t, testConfig(is.srv.URL))
	username, password, _ := chain.MintEphemeral(ephemeralSecret, "alice", time.Now().Add(2*time.Hour), chain.EphemeralFormat{})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	const rate, calls = 5000, 40000
	stdout, _, _ := testpeer.RunSIPp(t, append(sippArgs(testpeer.SIPpScenario(t, "register_digest.xml"),
		"-s", "alice", "-au", username, "-ap", password)(rate, calls), e.Addr("udp"))...)
	pprof.StopCPUProfile()
	c, err := testpeer.ParseSIPpCalls(stdout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RESULT %d/%d Digest REGISTERs ok at %d/s offered; profile in %s", c.Successful, calls, rate, path)
}
