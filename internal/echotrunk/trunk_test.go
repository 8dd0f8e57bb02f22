package echotrunk_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/webrtc/v4"

	"github.com/trunkpass/trunkpass/internal/echotrunk"
	"github.com/trunkpass/trunkpass/internal/echotrunk/echotest"
)

func TestMain(m *testing.M) {
	// The test caller plays the edge, which forwards browser offers larger
	// than sipgo's default UDP limit (1500-200 bytes); the demo process
	// raises the limit the same way.
	sip.UDPMTUSize = 8192
	os.Exit(m.Run())
}

// callTimeout bounds every wait of a test call.
const callTimeout = 10 * time.Second

type listeners struct {
	udp, tcp string
}

// startTrunk serves a trunk on fresh loopback UDP and TCP sockets.
func startTrunk(t *testing.T, opts echotrunk.Options) (*echotrunk.Trunk, listeners) {
	t.Helper()
	tr, err := echotrunk.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen tcp: %v", err)
	}
	go tr.ServeUDP(pc)
	go tr.ServeTCP(l)
	t.Cleanup(func() {
		tr.Close()
		pc.Close()
		l.Close()
	})
	return tr, listeners{udp: pc.LocalAddr().String(), tcp: l.Addr().String()}
}

// newCaller is a sipgo user agent that places calls.
func newCaller(t *testing.T) *sipgo.DialogUA {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("echotrunk-test"))
	if err != nil {
		t.Fatalf("NewUA: %v", err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { cli.Close(); ua.Close() })
	return &sipgo.DialogUA{
		Client:     cli,
		ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1"}},
	}
}

func target(user, hostport, transport string) sip.Uri {
	host, port, _ := net.SplitHostPort(hostport)
	p, _ := strconv.Atoi(port)
	u := sip.Uri{Scheme: "sip", User: user, Host: host, Port: p, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", transport)
	return u
}

const wantEchoed = 10

func sdpHeader() sip.Header { return sip.NewHeader("Content-Type", "application/sdp") }

func TestCallEchoesRTP(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run("a call over "+transport+" echoes RTP, survives a re-INVITE and ends with BYE", func(t *testing.T) {
			tr, ls := startTrunk(t, echotrunk.Options{})
			addr := ls.udp
			if transport == "tcp" {
				addr = ls.tcp
			}
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()

			o := echotest.NewCaller(t, wantEchoed)
			sess, err := newCaller(t).Invite(ctx, target("echo", addr, transport), []byte(o.Offer(t, callTimeout)), sdpHeader())
			if err != nil {
				t.Fatalf("INVITE: %v", err)
			}
			// sipgo hands each response to the transaction in its own
			// goroutine, so 180 may lose the race with 200 here; the CANCEL
			// test waits for 180.
			if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
				t.Fatalf("wait answer: %v", err)
			}
			answer := string(sess.InviteResponse.Body())
			for _, want := range []string{"a=candidate:", "127.0.0.1", "a=fingerprint:", "opus/48000/2", "a=end-of-candidates"} {
				if !strings.Contains(answer, want) {
					t.Errorf("answer SDP lacks %q:\n%s", want, answer)
				}
			}
			if err := sess.Ack(ctx); err != nil {
				t.Fatalf("ACK: %v", err)
			}
			if err := o.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
				t.Fatalf("set answer: %v", err)
			}
			sendCtx, stopSending := context.WithCancel(ctx)
			defer stopSending()
			go o.Send(sendCtx)
			select {
			case <-o.Echoed():
			case <-ctx.Done():
				t.Fatalf("only %d echoed RTP packets came back (trunk stats %+v)", o.Count(), tr.Stats())
			}

			// A re-INVITE with the same offer is answered with SDP.
			reinvite := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
			reinvite.SetBody([]byte(o.PC.LocalDescription().SDP))
			reinvite.AppendHeader(sdpHeader())
			res, err := sess.Do(ctx, reinvite)
			if err != nil {
				t.Fatalf("re-INVITE: %v", err)
			}
			if res.StatusCode != sip.StatusOK || !strings.Contains(string(res.Body()), "a=fingerprint:") {
				t.Errorf("re-INVITE answered %d with body %q", res.StatusCode, res.Body())
			}
			ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
			ack.AppendHeader(reinvite.CSeq())
			ack.CSeq().MethodName = sip.ACK
			if err := sess.WriteRequest(ack); err != nil {
				t.Fatalf("ACK re-INVITE: %v", err)
			}

			stopSending()
			if err := sess.Bye(ctx); err != nil {
				t.Fatalf("BYE: %v", err)
			}
			st := tr.Stats()
			if st.Invites != 1 || st.Answered != 1 || st.Ended != 1 || st.Active != 0 || st.Reinvites != 1 {
				t.Errorf("stats after BYE = %+v, want one call answered and ended, one re-INVITE", st)
			}
			if st.RTPReceived < wantEchoed || st.RTPSent < wantEchoed {
				t.Errorf("stats after BYE = %+v, want at least %d RTP packets each way", st, wantEchoed)
			}
		})
	}
}

func TestCancelBeforeAnswer(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run("a CANCEL over "+transport+" while ringing ends the INVITE with 487", func(t *testing.T) {
			tr, ls := startTrunk(t, echotrunk.Options{AnswerDelay: time.Hour})
			addr := ls.udp
			if transport == "tcp" {
				addr = ls.tcp
			}
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			o := echotest.NewCaller(t, wantEchoed)
			sess, err := newCaller(t).Invite(ctx, target("echo", addr, transport), []byte(o.Offer(t, callTimeout)), sdpHeader())
			if err != nil {
				t.Fatalf("INVITE: %v", err)
			}
			ringCtx, hangUp := context.WithCancel(ctx)
			defer hangUp()
			err = sess.WaitAnswer(ringCtx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
				if res.StatusCode == sip.StatusRinging {
					hangUp()
				}
				return nil
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitAnswer after CANCEL = %v, want context.Canceled", err)
			}
			if got := sess.InviteResponse.StatusCode; got != sip.StatusRequestTerminated {
				t.Errorf("INVITE ended with %d, want 487", got)
			}
			st := tr.Stats()
			if st.Canceled != 1 || st.Answered != 0 || st.Active != 0 {
				t.Errorf("stats after CANCEL = %+v, want one canceled call and none answered", st)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	_, ls := startTrunk(t, echotrunk.Options{})
	caller := newCaller(t)
	offer := echotest.NewCaller(t, wantEchoed).Offer(t, callTimeout)
	tests := []struct {
		name string
		req  func() *sip.Request
		want int
	}{
		{
			name: "an INVITE for another user gets 404",
			req: func() *sip.Request {
				r := sip.NewRequest(sip.INVITE, target("alice", ls.tcp, "tcp"))
				r.SetBody([]byte(offer))
				r.AppendHeader(sdpHeader())
				return r
			},
			want: sip.StatusNotFound,
		},
		{
			name: "an INVITE without an offer gets 488",
			req:  func() *sip.Request { return sip.NewRequest(sip.INVITE, target("echo", ls.tcp, "tcp")) },
			want: sip.StatusNotAcceptableHere,
		},
		{
			name: "an INVITE with a broken offer gets 488",
			req: func() *sip.Request {
				r := sip.NewRequest(sip.INVITE, target("echo", ls.tcp, "tcp"))
				r.SetBody([]byte("v=0\r\nthis is not SDP\r\n"))
				r.AppendHeader(sdpHeader())
				return r
			},
			want: sip.StatusNotAcceptableHere,
		},
		{
			name: "a BYE outside any call gets 481",
			req:  func() *sip.Request { return sip.NewRequest(sip.BYE, target("echo", ls.tcp, "tcp")) },
			want: sip.StatusCallTransactionDoesNotExists,
		},
		{
			name: "a re-INVITE outside any call gets 481",
			req: func() *sip.Request {
				r := sip.NewRequest(sip.INVITE, target("echo", ls.tcp, "tcp"))
				to := &sip.ToHeader{Address: target("echo", ls.tcp, "tcp"), Params: sip.NewParams()}
				to.Params.Add("tag", "unknown")
				r.AppendHeader(to)
				return r
			},
			want: sip.StatusCallTransactionDoesNotExists,
		},
		{
			name: "OPTIONS gets 200",
			req:  func() *sip.Request { return sip.NewRequest(sip.OPTIONS, target("echo", ls.udp, "udp")) },
			want: sip.StatusOK,
		},
		{
			name: "a MESSAGE gets 405",
			req:  func() *sip.Request { return sip.NewRequest(sip.MESSAGE, target("echo", ls.udp, "udp")) },
			want: sip.StatusMethodNotAllowed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			req := tt.req()
			req.AppendHeader(&caller.ContactHDR)
			res, err := caller.Client.Do(ctx, req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if res.StatusCode != tt.want {
				t.Errorf("status = %d %s, want %d", res.StatusCode, res.Reason, tt.want)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts echotrunk.Options
	}{
		{"an ICE address that is not an IP is refused", echotrunk.Options{ICEAddrs: []string{"localhost"}}},
		{"a negative answer delay is refused", echotrunk.Options{AnswerDelay: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := echotrunk.New(tt.opts); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestListenAndServeStopsWithContext(t *testing.T) {
	tr, err := echotrunk.New(echotrunk.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.ListenAndServe(ctx, "tcp", "127.0.0.1:0") }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ListenAndServe = %v, want context.Canceled", err)
		}
	case <-time.After(callTimeout):
		t.Fatal("ListenAndServe did not return after its context ended")
	}
	if err := tr.ListenAndServe(context.Background(), "sctp", "127.0.0.1:0"); err == nil {
		t.Error("ListenAndServe on sctp succeeded, want an error")
	}
}

func TestRegistrar(t *testing.T) {
	tests := []struct {
		name      string
		registrar bool
		want      int
	}{
		{"a REGISTER is answered 200 with its Contact when the registrar is on", true, sip.StatusOK},
		{"a REGISTER is refused with 405 when the registrar is off", false, sip.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, ls := startTrunk(t, echotrunk.Options{Registrar: tt.registrar})
			caller := newCaller(t)
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			req := sip.NewRequest(sip.REGISTER, target("", ls.tcp, "tcp"))
			contact := caller.ContactHDR.Clone()
			contact.Params = sip.NewParams()
			contact.Params.Add("reg-id", "1")
			req.AppendHeader(contact)
			req.AppendHeader(sip.NewHeader("Expires", "600"))
			res, err := caller.Client.Do(ctx, req)
			if err != nil {
				t.Fatalf("REGISTER: %v", err)
			}
			if res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.want)
			}
			if tt.registrar {
				if c := res.Contact(); c == nil || !c.Params.Has("reg-id") {
					t.Errorf("200 Contact = %v, want the request's Contact back", res.Contact())
				}
				if got := tr.Stats().Registers; got != 1 {
					t.Errorf("Registers = %d, want 1", got)
				}
			}
		})
	}
}

func TestCloseWhileRinging(t *testing.T) {
	t.Run("closing the trunk while it rings ends the INVITE with 503", func(t *testing.T) {
		tr, ls := startTrunk(t, echotrunk.Options{AnswerDelay: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		o := echotest.NewCaller(t, wantEchoed)
		sess, err := newCaller(t).Invite(ctx, target("echo", ls.tcp, "tcp"), []byte(o.Offer(t, callTimeout)), sdpHeader())
		if err != nil {
			t.Fatalf("INVITE: %v", err)
		}
		err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
			if res.StatusCode == sip.StatusRinging {
				go tr.Close()
			}
			return nil
		}})
		var rerr *sipgo.ErrDialogResponse
		if !errors.As(err, &rerr) || rerr.Res.StatusCode != sip.StatusServiceUnavailable {
			t.Errorf("WaitAnswer = %v, want a 503 answer", err)
		}
		if st := tr.Stats(); st.Answered != 0 || st.Active != 0 {
			t.Errorf("stats = %+v, want nothing answered", st)
		}
	})
}
