package verifier

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// startEdge runs an edge on real sockets until the test ends.
func startEdge(t testing.TB, cfg Config) *Edge {
	t.Helper()
	e := newTestEdge(t, cfg)
	if err := e.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// startUAS runs SIPp as the trunk (uas_trunk.xml) for calls calls; the
// returned func waits for it and reports its error.
func startUAS(t *testing.T, port, calls int) func() (string, error) {
	t.Helper()
	bin := testpeer.RequireSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-nostdin", "-sf", testpeer.SIPpScenario(t, "uas_trunk.xml"),
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(calls), "-timeout", "30s")
	cmd.Dir = t.TempDir()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	waited := false
	wait := func() (string, error) {
		waited = true
		err := cmd.Wait()
		cancel()
		return out.String(), err
	}
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
			cancel()
		}
	})
	time.Sleep(300 * time.Millisecond) // let SIPp bind before the first INVITE
	return wait
}

// sippCalls checks a RunSIPp result: sippCalls(t)(testpeer.RunSIPp(…)).
func sippCalls(t *testing.T) func(stdout, stderr string, err error) testpeer.SIPpCalls {
	return func(stdout, stderr string, err error) testpeer.SIPpCalls {
		t.Helper()
		calls, perr := testpeer.ParseSIPpCalls(stdout)
		if perr != nil || err != nil {
			t.Fatalf("sipp: %v %v\n%s\n%s", err, perr, testpeer.Tail(stdout, 3000), testpeer.Tail(stderr, 2000))
		}
		return calls
	}
}

func TestSIPpPeers(t *testing.T) {
	testpeer.RequireSIPp(t)
	is := newTestIssuer(t)
	trunkPort := testpeer.FreePort(t, "udp")
	cfg := testConfig(is.srv.URL)
	cfg.Listen = []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}
	cfg.Upstream = "sip:127.0.0.1:" + strconv.Itoa(trunkPort)
	e := startEdge(t, cfg)
	edgeUDP := e.Addr("udp")
	tokens := func(n int, user func(int) string) string {
		rows := make([][]string, n)
		for i := range rows {
			u := user(i)
			rows[i] = []string{is.mint(t, func(c *chain.EdgeClaims) { c.Subject = u; c.SIP.AOR = "sip:" + u + "@acme.example" }), u, "acme.example"}
		}
		return testpeer.WriteInjectionFile(t, "SEQUENTIAL", rows)
	}

	t.Run("REGISTER with Bearer over UDP and TCP succeeds for distinct tokens", func(t *testing.T) {
		inf := tokens(20, func(i int) string { return "user" + strconv.Itoa(i) })
		for _, tp := range []struct{ flag, addr string }{{"u1", edgeUDP}, {"t1", e.Addr("tcp")}} {
			calls := sippCalls(t)(testpeer.RunSIPp(t, "-sf", testpeer.SIPpScenario(t, "register_bearer.xml"), "-inf", inf,
				"-t", tp.flag, "-i", "127.0.0.1", "-m", "20", "-r", "50", "-timeout", "20s", tp.addr))
			if calls.Successful != 20 || calls.Failed != 0 {
				t.Fatalf("%s: %+v", tp.flag, calls)
			}
		}
		if e.Registrations() < 20 {
			t.Fatalf("%d registrations", e.Registrations())
		}
	})
	t.Run("REGISTER with a bad token gets invalid_token", func(t *testing.T) {
		inf := testpeer.WriteInjectionFile(t, "SEQUENTIAL", [][]string{{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", "alice", "acme.example"}})
		calls := sippCalls(t)(testpeer.RunSIPp(t, "-sf", testpeer.SIPpScenario(t, "register_bearer_reject.xml"), "-inf", inf,
			"-i", "127.0.0.1", "-m", "1", "-timeout", "10s", edgeUDP))
		if calls.Successful != 1 {
			t.Fatalf("%+v", calls)
		}
	})
	t.Run("REGISTER with Digest ephemeral credentials succeeds", func(t *testing.T) {
		username, password, _ := chain.MintEphemeral(ephemeralSecret, "alice", time.Now().Add(time.Hour), chain.EphemeralFormat{})
		calls := sippCalls(t)(testpeer.RunSIPp(t, "-sf", testpeer.SIPpScenario(t, "register_digest.xml"), "-s", "alice",
			"-au", username, "-ap", password, "-i", "127.0.0.1", "-m", "5", "-r", "50", "-timeout", "10s", edgeUDP))
		if calls.Successful != 5 {
			t.Fatalf("%+v", calls)
		}
	})
	for _, call := range []struct{ name, scenario string }{
		{"an INVITE reaches the trunk, and ACK and BYE follow the Record-Route", "invite_bearer_uac.xml"},
		{"a CANCEL is forwarded to the trunk", "invite_cancel_uac.xml"},
	} {
		t.Run(call.name, func(t *testing.T) {
			wait := startUAS(t, trunkPort, 1)
			inf := tokens(1, func(int) string { return "alice" })
			stdout, stderr, uacErr := testpeer.RunSIPp(t, "-sf", testpeer.SIPpScenario(t, call.scenario), "-inf", inf, "-s", "+441234567",
				"-i", "127.0.0.1", "-m", "1", "-timeout", "15s", edgeUDP)
			out, err := wait()
			if err != nil {
				t.Fatalf("uas: %v\n%s", err, testpeer.Tail(out, 3000))
			}
			calls := sippCalls(t)(stdout, stderr, uacErr)
			if calls.Successful != 1 {
				t.Fatalf("uac %+v, uas %v\n%s", calls, err, testpeer.Tail(out, 3000))
			}
		})
	}
}
