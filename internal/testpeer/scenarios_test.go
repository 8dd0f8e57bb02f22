package testpeer

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sippPair runs a UAS scenario and a UAC scenario against each other on
// 127.0.0.1 for one call and returns the UAS's message trace.
func sippPair(t *testing.T, uas, uac string, inf string) string {
	t.Helper()
	uasPort := FreePort(t, "udp")
	trace := filepath.Join(t.TempDir(), "uas_messages.log")
	srv := StartSIPp(t, "-sf", SIPpScenario(t, uas), "-i", "127.0.0.1", "-p", fmt.Sprint(uasPort),
		"-m", "1", "-trace_msg", "-message_file", trace)
	// SIPp binds at once, but give it a moment before the first INVITE
	// (a lost INVITE would only be retransmitted after 500 ms anyway).
	time.Sleep(200 * time.Millisecond)
	stdout, stderr, err := RunSIPp(t, fmt.Sprintf("127.0.0.1:%d", uasPort),
		"-sf", SIPpScenario(t, uac), "-inf", inf,
		"-i", "127.0.0.1", "-p", fmt.Sprint(FreePort(t, "udp")),
		"-m", "1", "-timeout", "20s", "-timeout_error")
	calls, perr := ParseSIPpCalls(stdout)
	if err != nil || perr != nil || calls.Successful != 1 || calls.Failed != 0 {
		t.Fatalf("%s against %s: %+v, %v %v\n%s\n%s", uac, uas, calls, err, perr, tail(stdout, 3000), stderr)
	}
	out, err := srv.Wait(15 * time.Second)
	if err != nil {
		t.Fatalf("%s: %v\n%s", uas, err, tail(out, 3000))
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	// SIPp logs sent messages with CRLF, received ones with LF.
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// requests returns the SIP requests of a SIPp message trace, each as its
// start line followed by its headers.
func requests(trace string) []string {
	var reqs []string
	cur := -1
	sc := bufio.NewScanner(strings.NewReader(trace))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			cur = -1
		case cur < 0 && strings.HasSuffix(line, " SIP/2.0"):
			reqs = append(reqs, line)
			cur = len(reqs) - 1
		case cur >= 0:
			reqs[cur] += "\n" + line
		}
	}
	return reqs
}

func method(req string) string { return strings.SplitN(req, " ", 2)[0] }

func TestScenarioInviteBearer(t *testing.T) {
	t.Parallel()
	const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
	inf := WriteInjectionFile(t, "SEQUENTIAL", [][]string{{"alice", token, "+15551234", "acme.test"}})
	trace := sippPair(t, "uas_trunk.xml", "invite_bearer_uac.xml", inf)
	var got []string
	for _, r := range requests(trace) {
		got = append(got, method(r))
		if !strings.Contains(r, "\nAuthorization: Bearer "+token+"\n") {
			t.Errorf("%s without the Bearer token:\n%s", method(r), r)
		}
		if !strings.Contains(r, "\nFrom: <sip:alice@acme.test>") {
			t.Errorf("%s From is not alice@acme.test:\n%s", method(r), r)
		}
	}
	if strings.Join(got, ",") != "INVITE,ACK,BYE" {
		t.Fatalf("requests at the trunk: %v", got)
	}
	if inv := requests(trace)[0]; !strings.HasPrefix(inv, "INVITE sip:+15551234@127.0.0.1:") {
		t.Errorf("Request-URI: %s", strings.SplitN(inv, "\n", 2)[0])
	}
}

func TestScenarioInviteCancel(t *testing.T) {
	t.Parallel()
	inf := WriteInjectionFile(t, "SEQUENTIAL", [][]string{{"alice", "tok", "+15551234", "acme.test"}})
	trace := sippPair(t, "uas_trunk_cancel.xml", "invite_cancel_uac.xml", inf)
	reqs := requests(trace)
	var got []string
	branch := map[string]string{}
	for _, r := range reqs {
		got = append(got, method(r))
		for _, l := range strings.Split(r, "\n") {
			if strings.HasPrefix(l, "Via:") {
				branch[method(r)] = l[strings.Index(l, "branch="):]
			}
		}
	}
	if strings.Join(got, ",") != "INVITE,CANCEL,ACK" {
		t.Fatalf("requests at the trunk: %v", got)
	}
	if branch["CANCEL"] != branch["INVITE"] || branch["ACK"] != branch["INVITE"] {
		t.Errorf("CANCEL/ACK branch differs from the INVITE's: %v", branch)
	}
	if strings.Contains(reqs[1], "Authorization:") {
		t.Errorf("CANCEL carries Authorization:\n%s", reqs[1])
	}
	if !strings.Contains(trace, "SIP/2.0 487 Request Terminated\nVia: SIP/2.0/UDP") || !strings.Contains(trace, "CSeq: 1 INVITE") {
		t.Errorf("no well-formed 487 in the trace:\n%s", tail(trace, 3000))
	}
}

// TestScenarioRegisterBearer answers register_bearer.xml with a tiny
// registrar that accepts exactly one token and echoes the Contact.
func TestScenarioRegisterBearer(t *testing.T) {
	t.Parallel()
	RequireSIPp(t)
	const good = "good.token.sig"
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	seen := make(chan string, 16)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := string(buf[:n])
			seen <- req
			code := "401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"acme.test\", error=\"invalid_token\""
			if strings.Contains(req, "\r\nAuthorization: Bearer "+good+"\r\n") {
				code = "200 OK\r\n" + header(req, "Contact")
			}
			var b strings.Builder
			fmt.Fprintf(&b, "SIP/2.0 %s\r\n", code)
			for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
				b.WriteString(header(req, h) + "\r\n")
			}
			b.WriteString("Content-Length: 0\r\n\r\n")
			_, _ = pc.WriteTo([]byte(b.String()), from)
		}
	}()
	addr := pc.LocalAddr().String()
	run := func(token string) (SIPpCalls, error) {
		inf := WriteInjectionFile(t, "SEQUENTIAL", [][]string{{"alice", token, "", "acme.test"}})
		stdout, stderr, err := RunSIPp(t, addr, "-sf", SIPpScenario(t, "register_bearer.xml"), "-inf", inf,
			"-i", "127.0.0.1", "-p", fmt.Sprint(FreePort(t, "udp")), "-m", "1", "-timeout", "10s", "-timeout_error")
		calls, perr := ParseSIPpCalls(stdout)
		if perr != nil {
			t.Fatalf("%v\n%s\n%s", perr, stdout, stderr)
		}
		return calls, err
	}
	if calls, err := run(good); err != nil || calls.Successful != 1 {
		t.Fatalf("good token: %+v %v", calls, err)
	}
	req := <-seen
	for _, want := range []string{"REGISTER sip:acme.test SIP/2.0\r\n", "\r\nTo: <sip:alice@acme.test>\r\n", "\r\nAuthorization: Bearer " + good + "\r\n"} {
		if !strings.Contains(req, want) {
			t.Errorf("REGISTER lacks %q:\n%s", want, req)
		}
	}
	if calls, err := run("bad.token.sig"); err == nil || calls.Failed != 1 {
		t.Fatalf("bad token: %+v %v", calls, err)
	}
}

// header returns the first "Name: value" line of a raw SIP message.
func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			return l
		}
	}
	return name + ":"
}
