package verifier

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// challengeRawOf runs challengeRaw on msg (lines joined with CRLF) and
// returns whether it answered, and the parsed answer.
func challengeRawOf(t *testing.T, e *Edge, lines ...string) (bool, *sip.Response) {
	t.Helper()
	rx, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	data := []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
	if !e.challengeRaw(data, tx, rx.LocalAddr().(*net.UDPAddr)) {
		return false, nil
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, _, err := rx.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sip.NewParser().ParseSIP(buf[:n])
	if err != nil {
		t.Fatalf("unparsable answer: %v\n%s", err, buf[:n])
	}
	return true, msg.(*sip.Response)
}

func TestStatelessChallenge(t *testing.T) {
	is := newTestIssuer(t)
	e := newTestEdge(t, testConfig(is.srv.URL))
	request := []string{
		"REGISTER sip:trunk.example.net SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1;rport",
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK0",
		"Max-Forwards: 70",
		"From: <sip:alice@acme.example>;tag=f1",
		"To: <sip:alice@acme.example>",
		"Call-ID: c1@host",
		"CSeq: 1 REGISTER",
		"Contact: <sip:alice@127.0.0.1:5099>",
		"Content-Length: 0",
	}
	t.Run("a REGISTER without credentials gets a 401 echoing its Via, From, To, Call-ID and CSeq", func(t *testing.T) {
		ok, res := challengeRawOf(t, e, request...)
		if !ok {
			t.Fatal("not answered")
		}
		if res.StatusCode != 401 {
			t.Fatalf("status %d", res.StatusCode)
		}
		vias := headerValues(res, "Via")
		if len(vias) != 2 || vias[0] != "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1;rport" || !strings.Contains(vias[1], "10.0.0.1") {
			t.Fatalf("Via %q", vias)
		}
		if res.From().Value() != "<sip:alice@acme.example>;tag=f1" || res.CallID().Value() != "c1@host" || res.CSeq().Value() != "1 REGISTER" {
			t.Fatalf("From %q, Call-ID %q, CSeq %q", res.From().Value(), res.CallID().Value(), res.CSeq().Value())
		}
		if tag, ok := res.To().Params.Get("tag"); !ok || tag == "" {
			t.Fatalf("To without tag: %q", res.To().Value())
		}
		got := headerValues(res, "WWW-Authenticate")
		if len(got) != 4 || !strings.Contains(got[0], "algorithm=MD5") || !strings.Contains(got[1], "algorithm=SHA-256") ||
			!strings.HasPrefix(got[2], "Bearer ") || !strings.Contains(got[3], "algorithm=MD5") || strings.Contains(got[2], "invalid_token") {
			t.Fatalf("challenges %q", got)
		}
	})
	t.Run("compact header names are understood and a To tag is kept", func(t *testing.T) {
		ok, res := challengeRawOf(t, e, "REGISTER sip:trunk.example.net SIP/2.0", "v: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK2",
			"f: <sip:alice@acme.example>;tag=f1", "t: <sip:alice@acme.example>;tag=t9", "i: c2", "CSeq: 2 REGISTER")
		if !ok {
			t.Fatal("not answered")
		}
		if res.To().Value() != "<sip:alice@acme.example>;tag=t9" || res.Via() == nil || res.CallID().Value() != "c2" {
			t.Fatalf("answer %s", res)
		}
	})
	unusual := []struct {
		name  string
		lines []string
	}{
		{"a folded header line", append(append([]string{}, request[:5]...), " ;x=y", request[5], request[6], request[7])},
		{"no CSeq", request[:7]},
		{"no Via", append([]string{request[0]}, request[3:]...)},
		{"two To headers", append(append([]string{}, request...), "To: <sip:bob@acme.example>")},
		{"a request line that is not SIP/2.0", append([]string{"REGISTER sip:trunk.example.net SIP/3.0"}, request[1:]...)},
	}
	for _, tt := range unusual {
		t.Run("a request with "+tt.name+" is left to the parser", func(t *testing.T) {
			if ok, _ := challengeRawOf(t, e, tt.lines...); ok {
				t.Fatal("answered")
			}
		})
	}
}

func FuzzChallengeRaw(f *testing.F) {
	f.Add([]byte("REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n"))
	f.Add([]byte("REGISTER sip:a SIP/2.0\r\n\r\n"))
	f.Add([]byte("REGISTER sip:a SIP/2.0\r\nt: <sip:a@b>;tag\r\n\r\n"))
	cfg := testConfig("")
	e, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	sink := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} // discard
	// Whatever arrives, challengeRaw answers or declines; it never panics.
	f.Fuzz(func(t *testing.T, data []byte) { e.challengeRaw(data, conn, sink) })
}

func TestHasAuthorization(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want bool
	}{
		{"an Authorization header is found", "REGISTER sip:a SIP/2.0\r\nVia: x\r\nAuthorization: Digest a=b\r\n\r\n", true},
		{"a Proxy-Authorization header in any case is found", "INVITE sip:a SIP/2.0\r\nproxy-AUTHORIZATION : Bearer x\r\n\r\n", true},
		{"no credentials is no credentials", "REGISTER sip:a SIP/2.0\r\nVia: x\r\nAllow: INVITE\r\n\r\n", false},
		{"a header merely starting with the name does not count", "REGISTER sip:a SIP/2.0\r\nAuthorization-Info: x\r\n\r\n", false},
		{"the name inside another header's value does not count", "REGISTER sip:a SIP/2.0\r\nX-Note: Authorization: x\r\n\r\n", false},
		{"a header in the body does not count", "REGISTER sip:a SIP/2.0\r\nVia: x\r\n\r\nAuthorization: x\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasAuthorization([]byte(tt.msg)); got != tt.want {
				t.Fatalf("hasAuthorization = %v", got)
			}
		})
	}
}
