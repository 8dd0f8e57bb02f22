package verifier

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/trunkpass/trunkpass/chain"
)

// fakeTrunk is a sipgo UAS on a UDP port of its own: it answers INVITE,
// BYE, REFER and INFO and counts what it got.
type fakeTrunk struct {
	addr string
	got  atomic.Int32
	acks atomic.Int32
	last atomic.Pointer[sip.Request]
}

func startFakeTrunk(t *testing.T) *fakeTrunk {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTrunk{addr: conn.LocalAddr().String()}
	ua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	srv, _ := sipgo.NewServer(ua)
	answer := func(req *sip.Request, tx sip.ServerTransaction) {
		ft.got.Add(1)
		ft.last.Store(req)
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if req.Method == sip.INVITE {
			res.AppendHeader(sip.NewHeader("Contact", "<sip:trunk@"+ft.addr+">"))
		}
		tx.Respond(res)
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.BYE, sip.REFER, sip.INFO, sip.NOTIFY, sip.OPTIONS} {
		srv.OnRequest(m, answer)
	}
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { ft.acks.Add(1) })
	go srv.ServeUDP(conn)
	t.Cleanup(func() { ua.Close(); conn.Close() })
	return ft
}

// udpPeer sends hand-written SIP over UDP and reads the answers.
type udpPeer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newUDPPeer(t *testing.T, to string) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ua, _ := net.ResolveUDPAddr("udp", to)
	return &udpPeer{t: t, conn: c, to: ua}
}

func (p *udpPeer) addr() string { return p.conn.LocalAddr().String() }

// request sends a request and returns its final answer (nil when none
// comes within 5 s).
func (p *udpPeer) request(method, ruri, callID string, cseq int, toTag string, headers ...string) *sip.Response {
	p.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%d;rport\r\n", p.addr(), time.Now().UnixNano())
	to := "<sip:+441234567@trunk.example.net>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	from := "<" + alice + ">;tag=v1"
	var rest []string
	for i := 0; i+1 < len(headers); i += 2 {
		switch headers[i] {
		case "From":
			from = headers[i+1]
		case "To":
			to = headers[i+1]
		default:
			rest = append(rest, headers[i], headers[i+1])
		}
	}
	headers = rest
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n", from, to, callID, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:alice@%s>\r\n", p.addr())
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	if _, err := p.conn.WriteToUDP([]byte(b.String()), p.to); err != nil {
		p.t.Fatal(err)
	}
	if method == "ACK" {
		return nil
	}
	buf := make([]byte, 65535)
	for range 20 {
		p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := p.conn.Read(buf)
		if err != nil {
			return nil
		}
		msg, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			continue
		}
		res, ok := msg.(*sip.Response)
		if !ok || res.StatusCode < 200 || res.CallID().Value() != callID || res.CSeq().SeqNo != uint32(cseq) {
			continue
		}
		return res
	}
	return nil
}

func TestInDialogRoutingIsBoundToFlowTokens(t *testing.T) {
	is := newTestIssuer(t)
	trunk := startFakeTrunk(t)
	victim := startFakeTrunk(t)
	cfg := testConfig(is.srv.URL)
	cfg.Upstream = "sip:" + trunk.addr
	e := startEdge(t, cfg)
	edge := e.Addr("udp")
	token := is.mint(t, nil)

	// call makes a genuine dialog through the edge and returns its
	// Record-Route and To tag.
	call := func(t *testing.T, v *udpPeer, callID, token string) (route, toTag string) {
		t.Helper()
		res := v.request("INVITE", "sip:+441234567@"+edge, callID, 1, "", "Authorization", "Bearer "+token)
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("INVITE: %v", res)
		}
		rr := res.GetHeader("Record-Route")
		if rr == nil {
			t.Fatal("no Record-Route")
		}
		tag, _ := res.To().Params.Get("tag")
		v.request("ACK", "sip:trunk@"+trunk.addr, callID, 1, tag, "Route", rr.Value())
		return rr.Value(), tag
	}
	refused := func(t *testing.T, res *sip.Response) {
		t.Helper()
		if res == nil || res.StatusCode != 403 || res.Reason != reasonNotInDialog {
			t.Fatalf("answer %v, want 403 %s", res, reasonNotInDialog)
		}
	}

	t.Run("a forged To tag with the edge's host in Route is refused", func(t *testing.T) {
		v := newUDPPeer(t, edge)
		for _, route := range []string{"<sip:127.0.0.1;lr>", "<sip:" + edge + ";lr>", "<sip:fAAAA@127.0.0.1;lr>"} {
			res := v.request("INVITE", "sip:+449001234@"+victim.addr, "forged-"+route, 1, "x", "Route", route)
			refused(t, res)
		}
		if n := victim.got.Load(); n != 0 {
			t.Fatalf("the forged requests reached their target %d times", n)
		}
	})
	t.Run("genuine ACK, re-INVITE and BYE follow the Record-Route to the trunk", func(t *testing.T) {
		v := newUDPPeer(t, edge)
		before := trunk.got.Load()
		route, tag := call(t, v, "genuine-1", token)
		if res := v.request("INVITE", "sip:trunk@"+trunk.addr, "genuine-1", 2, tag, "Route", route, "Authorization", "Bearer "+token); res == nil || res.StatusCode != 200 {
			t.Fatalf("re-INVITE: %v", res)
		}
		v.request("ACK", "sip:trunk@"+trunk.addr, "genuine-1", 2, tag, "Route", route)
		if res := v.request("BYE", "sip:trunk@"+trunk.addr, "genuine-1", 3, tag, "Route", route); res == nil || res.StatusCode != 200 {
			t.Fatalf("BYE: %v", res)
		}
		if got := trunk.got.Load() - before; got != 3 {
			t.Fatalf("trunk got %d requests, want INVITE, re-INVITE, BYE", got)
		}
		if last := trunk.last.Load(); last.GetHeader("Authorization") != nil {
			t.Fatal("credentials forwarded in-dialog")
		}
	})
	t.Run("an in-dialog request to another target goes to the dialog's trunk only", func(t *testing.T) {
		v := newUDPPeer(t, edge)
		route, tag := call(t, v, "genuine-2", token)
		before := victim.got.Load()
		if res := v.request("INFO", "sip:+449001234@"+victim.addr, "genuine-2", 2, tag, "Route", route, "Route", "<sip:"+victim.addr+";lr>"); res == nil || res.StatusCode != 200 {
			t.Fatalf("INFO: %v", res)
		}
		if victim.got.Load() != before {
			t.Fatal("a visitor-chosen Request-URI or Route was followed")
		}
	})
	t.Run("a flow token of another dialog is refused", func(t *testing.T) {
		v := newUDPPeer(t, edge)
		route, tag := call(t, v, "genuine-3", token)
		refused(t, v.request("BYE", "sip:trunk@"+trunk.addr, "other-call-id", 2, tag, "Route", route))
		refused(t, v.request("INVITE", "sip:+449001234@"+trunk.addr, "other-call-id", 1, "x", "Route", route))
	})
	t.Run("a genuine flow token from an unknown source is refused", func(t *testing.T) {
		v := newUDPPeer(t, edge)
		route, tag := call(t, v, "genuine-4", token)
		stranger := newUDPPeer(t, edge)
		refused(t, stranger.request("BYE", "sip:trunk@"+trunk.addr, "genuine-4", 2, tag, "Route", route))
	})
	t.Run("an in-dialog REFER needs a grant that allows REFER", func(t *testing.T) {
		v := newUDPPeer(t, edge)
		route, tag := call(t, v, "refer-1", token)
		res := v.request("REFER", "sip:trunk@"+trunk.addr, "refer-1", 2, tag, "Route", route, "Refer-To", "<sip:+449001234@trunk.example.net>")
		if res == nil || res.StatusCode != 403 || res.Reason != ErrMethod.Error() {
			t.Fatalf("REFER: %v", res)
		}
		referToken := is.mint(t, func(c *chain.EdgeClaims) { c.SIP.Methods = append(c.SIP.Methods, "REFER") })
		w := newUDPPeer(t, edge)
		route, tag = call(t, w, "refer-2", referToken)
		res = w.request("REFER", "sip:trunk@"+trunk.addr, "refer-2", 2, tag, "Route", route, "Refer-To", "<sip:+441234@trunk.example.net>")
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("REFER with a grant: %v", res)
		}
	})
}

func TestUnauthenticatedMethodsFromVisitors(t *testing.T) {
	is := newTestIssuer(t)
	trunk := startFakeTrunk(t)
	cfg := testConfig(is.srv.URL)
	cfg.Upstream = "sip:" + trunk.addr
	e := startEdge(t, cfg)
	v := newUDPPeer(t, e.Addr("udp"))
	for i, m := range []string{"REFER", "NOTIFY", "PUBLISH", "INFO", "UPDATE", "BYE", "PRACK"} {
		t.Run("an out-of-dialog "+m+" from a visitor gets 405", func(t *testing.T) {
			res := v.request(m, "sip:+449001234@"+e.Addr("udp"), "unauth-"+m, i+1, "")
			if res == nil || res.StatusCode != 405 {
				t.Fatalf("answer %v, want 405", res)
			}
			allow := res.GetHeader("Allow")
			if allow == nil || !strings.Contains(allow.Value(), "INVITE") || strings.Contains(allow.Value(), m) {
				t.Fatalf("Allow %v", allow)
			}
		})
	}
	t.Run("an OPTIONS to a user is answered by the edge", func(t *testing.T) {
		res := v.request("OPTIONS", "sip:+449001234@"+e.Addr("udp"), "unauth-options", 1, "")
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("answer %v", res)
		}
	})
	if n := trunk.got.Load(); n != 0 {
		t.Fatalf("the trunk got %d unauthenticated requests", n)
	}
	t.Run("requests from the trunk are unaffected", func(t *testing.T) {
		res := handle(e, sipRequest(t, "NOTIFY", "sip:bob@127.0.0.1", "sip:trunk@127.0.0.1", "sip:bob@127.0.0.1", trunk.addr))
		if res == nil || res.StatusCode != 480 {
			t.Fatalf("answer %v, want 480 (no such visitor)", res)
		}
	})
}

func TestAssertedIdentityHost(t *testing.T) {
	is := newTestIssuer(t)
	trunk := startFakeTrunk(t)
	cfg := testConfig(is.srv.URL)
	cfg.Upstream = "sip:" + trunk.addr
	e := startEdge(t, cfg)
	v := newUDPPeer(t, e.Addr("udp"))
	t.Run("an AOR without a host is asserted in the realm, not in the visitor's From host", func(t *testing.T) {
		token := is.mint(t, func(c *chain.EdgeClaims) { c.SIP.AOR = "" })
		res := v.request("INVITE", "sip:+441234567@"+e.Addr("udp"), "pai-1", 1, "",
			"Authorization", "Bearer "+token, "From", "<sip:alice@bank.example>;tag=v1")
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("INVITE: %v", res)
		}
		pai := trunk.last.Load().GetHeader("P-Asserted-Identity")
		if pai == nil || pai.Value() != "<sip:alice@trunk.example.net>" {
			t.Fatalf("P-Asserted-Identity %v", pai)
		}
	})
}

// answer reads the next request sent to p and answers it with code; it
// returns the request (nil when none comes within 5 s).
func (p *udpPeer) answer(code int) *sip.Request {
	p.t.Helper()
	buf := make([]byte, 65535)
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	msg, err := sip.NewParser().ParseSIP(buf[:n])
	req, ok := msg.(*sip.Request)
	if err != nil || !ok {
		return nil
	}
	res := sip.NewResponseFromRequest(req, code, "Busy Here", nil)
	p.conn.WriteToUDP([]byte(res.String()), from)
	return req
}

func TestCallsToAUserOfTwoCustomers(t *testing.T) {
	is := newTestIssuer(t)
	cfg := testConfig(is.srv.URL)
	globexTrunk := "127.0.0.1:5071"
	cfg.Routes = map[string]string{"globex": "sip:" + globexTrunk}
	e := startEdge(t, cfg)
	register := func(customer string) *udpPeer {
		v := newUDPPeer(t, e.Addr("udp"))
		aor := "sip:alice@" + customer + ".example"
		token := is.mint(t, func(c *chain.EdgeClaims) { c.CID = customer; c.SIP.AOR = aor })
		res := v.request("REGISTER", "sip:trunk.example.net", "reg-"+customer, 1, "",
			"From", "<"+aor+">;tag=r", "To", "<"+aor+">", "Authorization", "Bearer "+token)
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("REGISTER %s: %v", customer, res)
		}
		return v
	}
	globex := register("globex")
	register("acme") // last: a lookup by user alone would pick it
	invite := func(src string) chan *sip.Response {
		out := make(chan *sip.Response, 1)
		go func() {
			out <- handle(e, sipRequest(t, "INVITE", "sip:alice@127.0.0.1", "sip:+441234@trunk.example.net", "sip:alice@127.0.0.1", src))
		}()
		return out
	}
	t.Run("a call from a customer's route reaches that customer's alice", func(t *testing.T) {
		res := invite(globexTrunk)
		if req := globex.answer(486); req == nil {
			t.Fatal("globex's alice got no INVITE")
		}
		if r := <-res; r == nil || r.StatusCode != 486 {
			t.Fatalf("trunk got %v", r)
		}
	})
	t.Run("a call from the shared upstream to an ambiguous user reaches nobody", func(t *testing.T) {
		if r := <-invite("127.0.0.1:5070"); r == nil || r.StatusCode != 480 {
			t.Fatalf("trunk got %v, want 480", r)
		}
	})
}

func TestRegistrationContactLimits(t *testing.T) {
	is := newTestIssuer(t)
	cfg := testConfig(is.srv.URL)
	cfg.MaxContacts = 3
	e := newTestEdge(t, cfg)
	token := is.mint(t, nil)
	register := func(contacts ...string) *sip.Response {
		req := sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+token)
		req.RemoveHeader("Contact")
		for _, c := range contacts {
			req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: c, Host: "x.invalid"}})
		}
		return handle(e, req)
	}
	t.Run("a REGISTER with more Contacts than max_contacts is refused", func(t *testing.T) {
		res := register("a", "b", "c", "d")
		if res.StatusCode != 403 || res.Reason != reasonTooManyContacts || e.Registrations() != 0 {
			t.Fatalf("status %d %s, %d registrations", res.StatusCode, res.Reason, e.Registrations())
		}
	})
	t.Run("bindings of one AOR stop at max_contacts", func(t *testing.T) {
		for i := range 3 {
			if res := register(strconv.Itoa(i)); res.StatusCode != 200 {
				t.Fatalf("binding %d: status %d %s", i, res.StatusCode, res.Reason)
			}
		}
		res := register("3")
		if res.StatusCode != 403 || res.Reason != reasonTooManyContacts || e.Registrations() != 3 {
			t.Fatalf("status %d %s, %d registrations", res.StatusCode, res.Reason, e.Registrations())
		}
		if res := register("2"); res.StatusCode != 200 {
			t.Fatalf("a refresh of a binding: status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("max_contacts defaults to 10", func(t *testing.T) {
		if got := DefaultConfig().MaxContacts; got != 10 {
			t.Fatalf("default %d", got)
		}
	})
}

func TestFailureLimiterKeysAndBounds(t *testing.T) {
	is := newTestIssuer(t)
	cfg := testConfig(is.srv.URL)
	cfg.RateLimit = RateLimitConfig{FailuresPerSecond: 0.001, Burst: 2}
	e := newTestEdge(t, cfg)
	register := func(src, token string) *sip.Response {
		return handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, src, "Authorization", "Bearer "+token))
	}
	t.Run("IPv6 sources of one /64 share a failure limiter", func(t *testing.T) {
		for i := range 2 {
			register("[2001:db8::"+strconv.Itoa(i+1)+"]:5060", "x.y.z")
		}
		if res := register("[2001:db8::ffff]:5060", is.mint(t, nil)); res.StatusCode != 403 || res.Reason != reasonRateLimited {
			t.Fatalf("same /64: status %d %s", res.StatusCode, res.Reason)
		}
		if res := register("[2001:db8:0:1::1]:5060", is.mint(t, nil)); res.StatusCode != 200 {
			t.Fatalf("other /64: status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("the limiter table stays bounded and keeps limiting when full", func(t *testing.T) {
		e.limitMu.Lock()
		e.maxLimiters = 8
		e.limitMu.Unlock()
		for i := range 50 {
			e.failed(netip.MustParseAddr("198.51.100." + strconv.Itoa(i)))
			e.failed(netip.MustParseAddr("198.51.100." + strconv.Itoa(i)))
		}
		e.limitMu.Lock()
		n := len(e.limiters)
		e.limitMu.Unlock()
		if n > 8 {
			t.Fatalf("%d limiters, bound 8", n)
		}
		if !e.limited(netip.MustParseAddr("198.51.100.49")) {
			t.Fatal("the latest failing source is not limited")
		}
	})
}

func TestStatelessWorkersAreBounded(t *testing.T) {
	is := newTestIssuer(t)
	e := startEdge(t, testConfig(is.srv.URL))
	for range cap(e.workers) {
		e.workers <- struct{}{}
	}
	v := newUDPPeer(t, e.Addr("udp"))
	res := v.request("REGISTER", "sip:trunk.example.net", "busy-1", 1, "", "From", "<"+alice+">;tag=r", "To", "<"+alice+">", "Authorization", "Bearer "+is.mint(t, nil))
	if res == nil || res.StatusCode != 503 {
		t.Fatalf("answer %v, want 503 while every worker is busy", res)
	}
	for range cap(e.workers) {
		<-e.workers
	}
	res = v.request("REGISTER", "sip:trunk.example.net", "busy-2", 1, "", "From", "<"+alice+">;tag=r", "To", "<"+alice+">", "Authorization", "Bearer "+is.mint(t, nil))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("answer %v, want 200 once workers are free", res)
	}
}

func TestIssuerClockSkew(t *testing.T) {
	is := newTestIssuer(t)
	e := newTestEdge(t, testConfig(is.srv.URL))
	ahead := func(d time.Duration) func(*chain.EdgeClaims) {
		return func(c *chain.EdgeClaims) {
			now := time.Now().Add(d)
			c.IssuedAt, c.NotBefore = jwt.NewNumericDate(now), jwt.NewNumericDate(now)
			c.ExpiresAt = jwt.NewNumericDate(now.Add(10 * time.Minute))
		}
	}
	register := func(token string) *sip.Response {
		return handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+token))
	}
	t.Run("a fresh token from an issuer 5 s ahead is accepted", func(t *testing.T) {
		if res := register(is.mint(t, ahead(5*time.Second))); res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("a token issued beyond the leeway is refused", func(t *testing.T) {
		if res := register(is.mint(t, ahead(2*time.Minute))); res.StatusCode != 401 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("leeway defaults to 30 s", func(t *testing.T) {
		if got := DefaultConfig().Leeway; got != 30*time.Second {
			t.Fatalf("default %s", got)
		}
	})
}

func TestIssuerAndIntrospectionTogether(t *testing.T) {
	is := newTestIssuer(t)
	introspection := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("token") != "opaque-alice" {
			json.NewEncoder(w).Encode(map[string]any{"active": false})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "alice", "iss": is.srv.URL, "aud": "sip:trunk.example.net",
			"exp": time.Now().Add(5 * time.Minute).Unix(), "sip": map[string]any{"aor": alice, "methods": []string{"REGISTER"}}})
	}))
	t.Cleanup(introspection.Close)
	cfg := testConfig(is.srv.URL)
	cfg.Introspection.URL = introspection.URL
	e := newTestEdge(t, cfg)
	register := func(token string) *sip.Response {
		return handle(e, sipRequest(t, "REGISTER", "sip:trunk.example.net", alice, alice, visitor, "Authorization", "Bearer "+token))
	}
	t.Run("an opaque token is introspected", func(t *testing.T) {
		if res := register("opaque-alice"); res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("an edge token is still verified locally", func(t *testing.T) {
		if res := register(is.mint(t, nil)); res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("an opaque token the server calls inactive is invalid", func(t *testing.T) {
		if res := register("opaque-mallory"); res.StatusCode != 401 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
	})
}
