package verifier

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/verifier/registrar"
)

// okPair parses data as a REGISTER from src and returns the 200 OK that
// writeOK gives and the one the sipgo path (NewResponseFromRequest plus
// the Contacts) gives, or ok false when data is not a usable request.
func okPair(e *Edge, data []byte, src string, bs []registrar.Binding, now time.Time) (raw, ref string, ok bool) {
	msg, err := sip.NewParser().ParseSIP(data)
	if err != nil {
		return "", "", false
	}
	req, isReq := msg.(*sip.Request)
	if !isReq || req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return "", "", false
	}
	req.SetSource(src)
	req.SetTransport("UDP")
	var buf bytes.Buffer
	e.writeOK(&buf, req, bs, now)
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range bs {
		secs := int(b.Expires.Sub(now) / time.Second)
		res.AppendHeader(sip.NewHeader("Contact", b.Contact+";expires="+strconv.Itoa(max(secs, 0))))
	}
	var want bytes.Buffer
	res.StringWrite(&want)
	return buf.String(), want.String(), true
}

// okLines splits a response into its start line and its sorted header
// lines, with the To tag the responder added (the last parameter of To
// when the request's To had none) cut off, and reports that tag.
func okLines(t *testing.T, msg string, toTagged bool) (start string, headers []string, tag string) {
	t.Helper()
	head, body, found := strings.Cut(msg, "\r\n\r\n")
	if !found || body != "" {
		t.Fatalf("no end of headers or a body in\n%s", msg)
	}
	lines := strings.Split(head, "\r\n")
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "To: ") && !toTagged {
			i := strings.LastIndex(l, ";tag=")
			if i < 0 {
				t.Fatalf("To without an added tag: %q", l)
			}
			l, tag = l[:i], l[i+len(";tag="):]
		}
		headers = append(headers, l)
	}
	slices.Sort(headers)
	return lines[0], headers, tag
}

// checkSameOK fails unless raw and ref have the same start line and the
// same header lines (in any order), To tags aside.
func checkSameOK(t *testing.T, data []byte, raw, ref string) {
	t.Helper()
	req, _ := sip.NewParser().ParseSIP(data)
	toTagged := req.(*sip.Request).To().Params.Has("tag")
	rs, rh, rtag := okLines(t, raw, toTagged)
	ws, wh, _ := okLines(t, ref, toTagged)
	if rs != ws || !slices.Equal(rh, wh) {
		t.Fatalf("raw 200:\n%s\nsipgo 200:\n%s", raw, ref)
	}
	if !toTagged && rtag == "" {
		t.Fatalf("empty To tag in\n%s", raw)
	}
}

func TestStatelessOK(t *testing.T) {
	e := newTestEdge(t, testConfig(""))
	now := time.Now()
	binding := func(contact string, secs int) registrar.Binding {
		return registrar.Binding{Contact: contact, Expires: now.Add(time.Duration(secs)*time.Second + time.Second/2),
			Source: netip.MustParseAddrPort("127.0.0.1:5099")}
	}
	request := func(extra ...string) []byte {
		lines := append([]string{
			"REGISTER sip:trunk.example.net SIP/2.0",
			"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1",
			"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK0;received=10.9.9.9",
			"Max-Forwards: 70",
			`From: "Alice" <sip:alice@acme.example>;tag=f1`,
			"To: <sip:alice@acme.example>",
			"Call-ID: c1@host",
			"CSeq: 7 REGISTER",
			"Contact: <sip:alice@127.0.0.1:5099>",
			"Date: Sat, 13 Nov 2010 23:29:00 GMT",
		}, extra...)
		return []byte(strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n")
	}
	withVia := func(via string) []byte {
		return bytes.Replace(request(), []byte("Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1"), []byte(via), 1)
	}
	tests := []struct {
		name string
		data []byte
		src  string
		bs   []registrar.Binding
	}{
		{"a REGISTER with one binding", request(), "127.0.0.1:5099", []registrar.Binding{binding("<sip:alice@127.0.0.1:5099>", 3600)}},
		{"a REGISTER with two bindings", request(), "127.0.0.1:5099",
			[]registrar.Binding{binding("<sip:alice@127.0.0.1:5099>", 60), binding(`"A" <sip:alice@192.0.2.1;transport=tcp>;+sip.instance="<urn:x>"`, 0)}},
		{"a REGISTER that leaves no binding", request(), "127.0.0.1:5099", nil},
		{"a REGISTER whose top Via asks for rport", withVia("Via: SIP/2.0/UDP 127.0.0.1:5099;rport;branch=z9hG4bK1"), "127.0.0.1:5099", nil},
		{"a REGISTER whose top Via asks for rport over IPv6", withVia("Via: SIP/2.0/UDP [::1]:5099;branch=z9hG4bK1;rport;received=x"), "[::1]:6000", nil},
		{"a REGISTER whose top Via is an IPv4-mapped IPv6 address", withVia("Via: SIP/2.0/UDP [::ffff:192.0.2.1]:5099;branch=z9hG4bK1"), "127.0.0.1:5099", nil},
		{"a REGISTER whose top Via is a host name", withVia("Via: SIP/2.0/TLS pbx.example.com;branch=z9hG4bK1"), "127.0.0.1:5099", nil},
		{"a REGISTER whose top Via has an rport value", withVia("Via: SIP/2.0/UDP 127.0.0.1:5099;rport=1;branch=z9hG4bK1"), "127.0.0.1:5099", nil},
		{"a REGISTER with compact headers and a tagged To", []byte("REGISTER sip:a SIP/2.0\r\nv: SIP/2.0/UDP h:1;branch=z9hG4bKx, SIP/2.0/TCP g;branch=z9hG4bKy\r\n" +
			"f: <sip:a@b>;tag=1\r\nt: sip:a@b;tag=2\r\ni: c\r\nCSeq: 1 REGISTER\r\nm: <sip:a@c>\r\n\r\n"), "127.0.0.1:1", []registrar.Binding{binding("<sip:a@c>", 5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" gets the 200 the sipgo path would give", func(t *testing.T) {
			raw, ref, ok := okPair(e, tt.data, tt.src, tt.bs, now)
			if !ok {
				t.Fatal("request not parsed")
			}
			checkSameOK(t, tt.data, raw, ref)
			res, err := sip.NewParser().ParseSIP([]byte(raw))
			if err != nil {
				t.Fatalf("raw 200 does not parse: %v\n%s", err, raw)
			}
			if got := headerValues(res.(*sip.Response), "Contact"); len(got) != len(tt.bs) {
				t.Fatalf("Contacts %q", got)
			}
		})
	}
	t.Run("the Contact expires are the seconds left", func(t *testing.T) {
		raw, _, _ := okPair(e, request(), "127.0.0.1:5099", []registrar.Binding{binding("<sip:a@c>", 42), binding("<sip:a@d>", -5)}, now)
		if !strings.Contains(raw, "Contact: <sip:a@c>;expires=42\r\n") || !strings.Contains(raw, "Contact: <sip:a@d>;expires=0\r\n") {
			t.Fatalf("200:\n%s", raw)
		}
	})
	t.Run("two answers get different To tags", func(t *testing.T) {
		a, _, _ := okPair(e, request(), "127.0.0.1:5099", nil, now)
		b, _, _ := okPair(e, request(), "127.0.0.1:5099", nil, now)
		_, _, ta := okLines(t, a, false)
		_, _, tb := okLines(t, b, false)
		if ta == tb {
			t.Fatalf("same tag %q twice", ta)
		}
	})
}

func FuzzStatelessOK(f *testing.F) {
	f.Add([]byte("REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;rport\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@c>\r\n\r\n"))
	f.Add([]byte("REGISTER sip:a SIP/2.0\r\nv: SIP/2.0/UDP h:1;branch=z9hG4bKx, SIP/2.0/TCP g\r\nf: \"x\" <sip:a@b>;tag=1\r\nt: sip:a@b;tag=2\r\ni: c\r\nCSeq: 1 REGISTER\r\n\r\n"))
	f.Add([]byte("REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:5;rport;received=a\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sips:a@b;x=y>;p=\"q r\"\r\nCall-ID: c\r\nCSeq: 99 REGISTER\r\n\r\n"))
	cfg := testConfig("")
	e, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	now := time.Now()
	bs := []registrar.Binding{{Contact: "<sip:a@c>", Expires: now.Add(time.Minute)}}
	// Whatever request sipgo parses, the raw 200 has the headers of the
	// sipgo one.
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, ref, ok := okPair(e, data, "127.0.0.1:5060", bs, now)
		if !ok {
			return
		}
		checkSameOK(t, data, raw, ref)
	})
}

// BenchmarkOK compares the 200 of a REGISTER written by writeOK with the
// one built as a sip.Response.
func BenchmarkOK(b *testing.B) {
	e := newTestEdge(b, testConfig(""))
	data := []byte("REGISTER sip:trunk.example.net SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:alice@acme.example>;tag=f1\r\nTo: <sip:alice@acme.example>\r\nCall-ID: c1@host\r\nCSeq: 7 REGISTER\r\n" +
		"Contact: <sip:alice@127.0.0.1:5099>\r\nContent-Length: 0\r\n\r\n")
	msg, err := sip.NewParser().ParseSIP(data)
	if err != nil {
		b.Fatal(err)
	}
	req := msg.(*sip.Request)
	req.SetSource("127.0.0.1:5099")
	now := time.Now()
	bs := []registrar.Binding{{Contact: "<sip:alice@127.0.0.1:5099>", Expires: now.Add(time.Hour)}}
	var buf bytes.Buffer
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			e.writeOK(&buf, req, bs, now)
		}
	})
	b.Run("sipgo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			for _, bd := range bs {
				secs := int(bd.Expires.Sub(now) / time.Second)
				res.AppendHeader(sip.NewHeader("Contact", bd.Contact+";expires="+strconv.Itoa(max(secs, 0))))
			}
			res.StringWrite(&buf)
		}
	})
}
