package verifier

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// standInTrunk is a trunk made of a sipgo UA on 127.0.0.1 over UDP. It
// records the methods of the requests it receives, answers MESSAGE, BYE and OPTIONS with
// 200, and INVITE with 180; with acceptDespiteCancel it answers the
// pending INVITE 200 the moment a CANCEL arrives, before its transaction
// layer sees the CANCEL (the race of RFC 3261 §9.1), and otherwise lets
// the CANCEL end the INVITE with 487.
type standInTrunk struct {
	port int
	got  chan string // methods received, in order

	mu      sync.Mutex
	pending *pendingInvite
}

type pendingInvite struct {
	req *sip.Request
	tx  sip.ServerTransaction
	tag string // To tag of the 180, kept in the 200
}

func startStandInTrunk(t *testing.T, acceptDespiteCancel bool) *standInTrunk {
	t.Helper()
	tr := &standInTrunk{port: testpeer.FreePort(t, "udp"), got: make(chan string, 32)}
	// Requests are recorded as they arrive on the socket, so their order
	// is the order the edge sent them in.
	filter := func(_ sip.TransportReadProps, data []byte) ([]byte, error) {
		if method, _, ok := bytes.Cut(data, []byte(" ")); ok && !bytes.HasPrefix(data, []byte("SIP/")) {
			select {
			case tr.got <- string(method):
			default:
			}
		}
		if acceptDespiteCancel && bytes.HasPrefix(data, []byte("CANCEL ")) {
			tr.mu.Lock()
			p := tr.pending
			tr.pending = nil
			tr.mu.Unlock()
			if p != nil {
				res := sip.NewResponseFromRequest(p.req, 200, "OK", []byte("v=0\r\n"))
				res.To().Params.Remove("tag")
				res.To().Params.Add("tag", p.tag)
				res.AppendHeader(sip.NewHeader("Contact", "<sip:trunk@127.0.0.1:"+strconv.Itoa(tr.port)+">"))
				res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
				p.tx.Respond(res)
			}
		}
		return data, nil
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(filter)))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		ringing := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
		tag, _ := ringing.To().Params.Get("tag")
		tr.mu.Lock()
		tr.pending = &pendingInvite{req: req, tx: tx, tag: tag}
		tr.mu.Unlock()
		tx.Respond(ringing)
		select {
		case <-tx.Done():
		case <-time.After(10 * time.Second):
		}
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	for _, m := range []sip.RequestMethod{sip.BYE, sip.MESSAGE, sip.OPTIONS} {
		srv.OnRequest(m, func(req *sip.Request, tx sip.ServerTransaction) {
			tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		srv.ListenAndServe(context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyCtxValue(ready)), "udp", "127.0.0.1:"+strconv.Itoa(tr.port))
		close(done)
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("stand-in trunk did not start")
	}
	t.Cleanup(func() { cancel(); ua.Close(); <-done })
	return tr
}

func (tr *standInTrunk) uri() string { return "sip:127.0.0.1:" + strconv.Itoa(tr.port) }

// next returns the next method the trunk received, or "" after a while.
func (tr *standInTrunk) next(wait time.Duration) string {
	select {
	case m := <-tr.got:
		return m
	case <-time.After(wait):
		return ""
	}
}

// newVisitor is a sipgo client on 127.0.0.1 sending to the edge.
func newVisitor(t *testing.T) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// TestCancelledCallAcceptedByTheTrunk: when the trunk answers 200 to an
// INVITE after the visitor's CANCEL was forwarded to it, the edge ACKs the
// 200 and sends a BYE, so no half-open call is left on the trunk.
func TestCancelledCallAcceptedByTheTrunk(t *testing.T) {
	is := newTestIssuer(t)
	trunk := startStandInTrunk(t, true)
	cfg := testConfig(is.srv.URL)
	cfg.Upstream = trunk.uri()
	e := startEdge(t, cfg)
	cli := newVisitor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	edgePort := atoiPort(e.Addr("udp"))
	inv := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "+441234567", Host: "127.0.0.1", Port: edgePort})
	inv.AppendHeader(sip.NewHeader("From", "<"+alice+">;tag=v1"))
	inv.AppendHeader(sip.NewHeader("To", "<sip:+441234567@trunk.example.net>"))
	inv.AppendHeader(sip.NewHeader("Contact", "<sip:alice@127.0.0.1>"))
	inv.AppendHeader(sip.NewHeader("Call-ID", "cancel-race-"+strconv.FormatInt(time.Now().UnixNano(), 10)))
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	maxfwd := sip.MaxForwardsHeader(70)
	inv.AppendHeader(&maxfwd)
	inv.AppendHeader(sip.NewHeader("Proxy-Authorization", "Bearer "+is.mint(t, nil)))
	tx, err := cli.TransactionRequest(ctx, inv, sipgo.ClientRequestAddVia)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	waitFor := func(code int) {
		t.Helper()
		for {
			select {
			case res := <-tx.Responses():
				if res.StatusCode == code {
					return
				}
				if res.StatusCode >= 200 {
					t.Fatalf("visitor got %d %s, want %d", res.StatusCode, res.Reason, code)
				}
			case <-tx.Done():
				t.Fatalf("INVITE transaction ended before %d: %v", code, tx.Err())
			case <-ctx.Done():
				t.Fatalf("no %d", code)
			}
		}
	}
	waitFor(180)
	if m := trunk.next(5 * time.Second); m != "INVITE" {
		t.Fatalf("trunk got %q first, want INVITE", m)
	}

	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.AppendHeader(&maxfwd)
	c.SetDestination(inv.Destination())
	if res, err := cli.Do(ctx, c); err != nil || res.StatusCode != 200 {
		t.Fatalf("CANCEL: %v %v", res, err)
	}
	waitFor(487)

	var got []string
	for len(got) < 3 {
		m := trunk.next(5 * time.Second)
		if m == "" {
			break
		}
		got = append(got, m)
	}
	if len(got) != 3 || got[0] != "CANCEL" || got[1] != "ACK" || got[2] != "BYE" {
		t.Fatalf("trunk received %q after the INVITE, want CANCEL, ACK, BYE", got)
	}
}

// TestRoutesPerCustomer: a visitor of a customer with a route reaches
// that route's trunk; a visitor of another customer reaches the upstream.
func TestRoutesPerCustomer(t *testing.T) {
	is := newTestIssuer(t)
	routeA, upstream := startStandInTrunk(t, false), startStandInTrunk(t, false)
	cfg := testConfig(is.srv.URL)
	cfg.Upstream = upstream.uri()
	cfg.Routes = map[string]string{"acme": routeA.uri()}
	e := startEdge(t, cfg)
	message := func(cid string) *sip.Response {
		tok := is.mint(t, func(c *chain.EdgeClaims) { c.CID = cid; c.SIP.Methods = []string{"MESSAGE"} })
		req := sipRequest(t, "MESSAGE", "sip:+441234567@trunk.example.net", alice, "sip:+441234567@trunk.example.net", visitor,
			"Proxy-Authorization", "Bearer "+tok)
		return handle(e, req)
	}
	tests := []struct {
		name      string
		cid       string
		want, not *standInTrunk
	}{
		{"a visitor of customer acme reaches acme's route", "acme", routeA, upstream},
		{"a visitor of customer globex, without a route, reaches the upstream", "globex", upstream, routeA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := message(tt.cid); res == nil || res.StatusCode != 200 {
				t.Fatalf("answer %v", res)
			}
			if m := tt.want.next(5 * time.Second); m != "MESSAGE" {
				t.Fatalf("the expected trunk got %q", m)
			}
			if n := len(tt.not.got); n != 0 {
				t.Fatalf("the other trunk got %d requests", n)
			}
		})
	}
}
