package echotrunk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Defaults of Options.
const (
	DefaultUser            = "echo"
	DefaultAddr            = "127.0.0.1:5070"
	DefaultGatherTimeout   = 10 * time.Second
	DefaultMaxCallDuration = time.Hour
	// MaxSDPSize bounds the offers the trunk accepts.
	MaxSDPSize = 64 << 10
)

// closeGrace bounds how long Close waits for pending INVITEs to be answered.
const closeGrace = 2 * time.Second

// allowed is the Allow header of the trunk's answers.
const allowed = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"

// ErrClosed is returned by ListenAndServe and Serve* after Close.
var ErrClosed = errors.New("echotrunk: closed")

// Options configure a Trunk. The zero value is usable.
type Options struct {
	// User is the user part of the Request-URI the trunk answers
	// (sip:echo@any-host); "*" answers every user. DefaultUser when empty.
	User string
	// ICEAddrs are the local IP addresses ICE candidates are gathered on;
	// 127.0.0.1 when empty.
	ICEAddrs []string
	// AnswerDelay is how long the trunk rings (after 180) before it answers.
	AnswerDelay time.Duration
	// GatherTimeout bounds ICE gathering before the answer;
	// DefaultGatherTimeout when zero.
	GatherTimeout time.Duration
	// MaxCallDuration ends a call's media after this long;
	// DefaultMaxCallDuration when zero.
	MaxCallDuration time.Duration
	// ContactHost is the host written in the Contact of answers; the
	// listener's address when empty.
	ContactHost string
	// Registrar makes the trunk answer REGISTER with 200 (echoing the
	// Contact), without authentication, so a browser can register and call
	// it directly over WebSocket without an edge: for page tests and
	// debugging only. Off, REGISTER gets 405 like any other unknown method.
	Registrar bool
	// Logger receives the trunk's and sipgo's logs; discarded when nil.
	Logger *slog.Logger
}

// Stats are counters of a Trunk since it was created.
type Stats struct {
	// Invites counts new INVITEs received (re-INVITEs excluded).
	Invites int64
	// Answered counts calls answered with 200 OK.
	Answered int64
	// Active is the number of calls answered and not yet ended.
	Active int64
	// Ended counts answered calls that have ended (BYE, timeout, Close).
	Ended int64
	// Canceled counts INVITEs canceled before the answer.
	Canceled int64
	// Rejected counts INVITEs answered with a final error.
	Rejected int64
	// Reinvites counts in-dialog INVITEs and UPDATEs accepted (answered 200).
	Reinvites int64
	// Registers counts REGISTERs accepted (Options.Registrar only).
	Registers int64
	// RTPReceived and RTPSent count RTP packets read from and echoed to
	// callers.
	RTPReceived, RTPSent int64
}

// Trunk is the echo test trunk. It is safe for concurrent use.
type Trunk struct {
	opts    Options
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	media   *mediaEngine
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	calls   map[string]*call  // by Call-ID
	listens map[string]string // transport (lower case) -> host:port
	closed  bool
	// pending counts INVITE handlers that have not answered yet; Close
	// lets them send their final answer before the transports go.
	pending sync.WaitGroup

	invites, answered, active, ended, canceled, rejected, reinvites, registers atomic.Int64
	rtpIn, rtpOut                                                              atomic.Int64
}

// New validates opts, fills defaults and builds a Trunk ready to serve.
func New(opts Options) (*Trunk, error) {
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if len(opts.ICEAddrs) == 0 {
		opts.ICEAddrs = []string{"127.0.0.1"}
	}
	if opts.GatherTimeout <= 0 {
		opts.GatherTimeout = DefaultGatherTimeout
	}
	if opts.MaxCallDuration <= 0 {
		opts.MaxCallDuration = DefaultMaxCallDuration
	}
	if opts.AnswerDelay < 0 {
		return nil, fmt.Errorf("echotrunk: negative answer delay %s", opts.AnswerDelay)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	addrs := make([]netip.Addr, 0, len(opts.ICEAddrs))
	for _, s := range opts.ICEAddrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("echotrunk: ICE address %q: %w", s, err)
		}
		addrs = append(addrs, a.Unmap())
	}
	media, err := newMediaEngine(addrs, log)
	if err != nil {
		return nil, fmt.Errorf("echotrunk: %w", err)
	}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("trunkpass-echo"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
	)
	if err != nil {
		return nil, fmt.Errorf("echotrunk: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("echotrunk: server: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Trunk{
		opts: opts, log: log, ua: ua, srv: srv, media: media,
		ctx: ctx, cancel: cancel,
		calls:   make(map[string]*call),
		listens: make(map[string]string),
	}
	srv.OnInvite(t.onInvite)
	srv.OnAck(t.onAck)
	srv.OnBye(t.onBye)
	srv.OnCancel(t.onCancel)
	srv.OnUpdate(t.onUpdate)
	srv.OnOptions(t.onOptions)
	srv.OnNoRoute(t.onNoRoute)
	if opts.Registrar {
		srv.OnRegister(t.onRegister)
	}
	return t, nil
}

// ListenAndServe listens on network ("udp", "tcp" or "ws") at addr
// (DefaultAddr when empty) and serves until ctx ends or Close is called.
// Call it once per network, typically in its own goroutine.
func (t *Trunk) ListenAndServe(ctx context.Context, network, addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	switch network {
	case "udp":
		l, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("echotrunk: listen udp %s: %w", addr, err)
		}
		return t.serve(ctx, l, func() error { return t.ServeUDP(l) })
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("echotrunk: listen tcp %s: %w", addr, err)
		}
		return t.serve(ctx, l, func() error { return t.ServeTCP(l) })
	case "ws":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("echotrunk: listen ws %s: %w", addr, err)
		}
		return t.serve(ctx, l, func() error { return t.ServeWS(l) })
	default:
		return fmt.Errorf("echotrunk: network %q: want udp, tcp or ws", network)
	}
}

func (t *Trunk) serve(ctx context.Context, l io.Closer, serve func() error) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	tstop := context.AfterFunc(t.ctx, func() { l.Close() })
	defer tstop()
	err := serve()
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ServeUDP serves SIP on an already bound UDP socket until it is closed.
func (t *Trunk) ServeUDP(l net.PacketConn) error {
	if err := t.register("udp", l.LocalAddr().String()); err != nil {
		return err
	}
	return t.srv.ServeUDP(l)
}

// ServeTCP serves SIP on an already bound TCP listener until it is closed.
func (t *Trunk) ServeTCP(l net.Listener) error {
	if err := t.register("tcp", l.Addr().String()); err != nil {
		return err
	}
	return t.srv.ServeTCP(l)
}

// ServeWS serves SIP over WebSocket on an already bound TCP listener until
// it is closed.
func (t *Trunk) ServeWS(l net.Listener) error {
	if err := t.register("ws", l.Addr().String()); err != nil {
		return err
	}
	return t.srv.ServeWS(l)
}

func (t *Trunk) register(network, addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	t.listens[network] = addr
	return nil
}

// Stats returns the trunk's counters.
func (t *Trunk) Stats() Stats {
	return Stats{
		Invites:     t.invites.Load(),
		Answered:    t.answered.Load(),
		Active:      t.active.Load(),
		Ended:       t.ended.Load(),
		Canceled:    t.canceled.Load(),
		Rejected:    t.rejected.Load(),
		Reinvites:   t.reinvites.Load(),
		Registers:   t.registers.Load(),
		RTPReceived: t.rtpIn.Load(),
		RTPSent:     t.rtpOut.Load(),
	}
}

// Close ends every call, stops the listeners and releases the user agent.
func (t *Trunk) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	calls := make([]*call, 0, len(t.calls))
	for _, c := range t.calls {
		calls = append(calls, c)
	}
	t.mu.Unlock()
	for _, c := range calls {
		t.endCall(c, "trunk closed")
	}
	t.cancel()
	done := make(chan struct{})
	go func() { t.pending.Wait(); close(done) }()
	timer := time.NewTimer(closeGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	return t.ua.Close()
}

// contact is the Contact header of answers to req.
func (t *Trunk) contact(req *sip.Request) *sip.ContactHeader {
	network := strings.ToLower(req.Transport())
	t.mu.Lock()
	hostport := t.listens[network]
	t.mu.Unlock()
	host, portStr, _ := net.SplitHostPort(hostport)
	port, _ := strconv.Atoi(portStr)
	if t.opts.ContactHost != "" {
		host = t.opts.ContactHost
	}
	if host == "" {
		host = "127.0.0.1"
	}
	uri := sip.Uri{Scheme: "sip", User: t.opts.User, Host: host, Port: port}
	if uri.User == "*" {
		uri.User = DefaultUser
	}
	if network == "tcp" || network == "ws" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", network)
	}
	return &sip.ContactHeader{Address: uri}
}

// respond answers req with a response carrying the dialog's To tag (when
// not empty), extra headers and body.
func (t *Trunk) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason, tag string, body []byte, hdrs ...sip.Header) error {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if tag != "" {
		if to := res.To(); to != nil {
			to.Params.Add("tag", tag)
		}
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		return fmt.Errorf("respond %d to %s: %w", code, req.Method, err)
	}
	return nil
}

func (t *Trunk) reject(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	if req.IsInvite() {
		t.rejected.Add(1)
	}
	if err := t.respond(req, tx, code, reason, "", nil); err != nil {
		t.log.Debug("echotrunk: reject", "error", err)
	}
}

func (t *Trunk) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() || tx == nil {
		return
	}
	t.reject(req, tx, sip.StatusMethodNotAllowed, "Method Not Allowed")
}

func (t *Trunk) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if err := t.respond(req, tx, sip.StatusOK, "OK", "", nil, sip.NewHeader("Allow", allowed)); err != nil {
		t.log.Debug("echotrunk: options", "error", err)
	}
}

// onRegister accepts every REGISTER (Options.Registrar): 200 with the
// request's Contact and Expires, as JsSIP needs to see its Contact back.
func (t *Trunk) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	var hdrs []sip.Header
	if c := req.Contact(); c != nil {
		hdrs = append(hdrs, c.Clone())
	}
	if e := req.GetHeader("Expires"); e != nil {
		hdrs = append(hdrs, sip.NewHeader("Expires", e.Value()))
	}
	t.registers.Add(1) // before the answer: a caller that saw 200 sees the count
	if err := t.respond(req, tx, sip.StatusOK, "OK", "", nil, hdrs...); err != nil {
		t.log.Debug("echotrunk: register", "error", err)
	}
}

func (t *Trunk) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// A CANCEL matching a pending INVITE is answered by the transaction
	// layer (200, then 487 to the INVITE); this one matched nothing.
	t.reject(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
}

// lookup finds the call req belongs to: same Call-ID and our To tag.
func (t *Trunk) lookup(req *sip.Request) *call {
	id := req.CallID()
	to := req.To()
	if id == nil || to == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	t.mu.Lock()
	c := t.calls[string(*id)]
	t.mu.Unlock()
	if c == nil || tag != c.tag {
		return nil
	}
	return c
}

func (t *Trunk) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := t.lookup(req); c != nil {
		c.ackOnce.Do(func() { close(c.acked) })
	}
}

func (t *Trunk) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := t.lookup(req)
	if c == nil {
		t.reject(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	// End first, so the call is over (and counted) once the caller sees 200.
	t.endCall(c, "bye")
	if err := t.respond(req, tx, sip.StatusOK, "OK", "", nil); err != nil {
		t.log.Debug("echotrunk: bye", "error", err)
	}
}

func (t *Trunk) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	t.inDialog(req, tx)
}

func (t *Trunk) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		t.inDialog(req, tx)
		return
	}
	t.invites.Add(1)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.reject(req, tx, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	t.pending.Add(1)
	t.mu.Unlock()
	defer t.pending.Done()
	if err := t.newCall(req, tx); err != nil {
		t.log.Info("echotrunk: call not answered", "call_id", callID(req), "error", err)
	}
}

// inDialog answers a re-INVITE or UPDATE: an offer renegotiates the
// PeerConnection, no offer gets the current SDP (INVITE) or none (UPDATE).
func (t *Trunk) inDialog(req *sip.Request, tx sip.ServerTransaction) {
	c := t.lookup(req)
	if c == nil {
		t.reject(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	body := req.Body()
	var answer []byte
	if len(body) > 0 {
		if !isSDP(req) || len(body) > MaxSDPSize {
			t.reject(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		sdp, err := c.renegotiate(string(body))
		if err != nil {
			t.log.Info("echotrunk: renegotiation failed", "call_id", c.id, "error", err)
			t.reject(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		answer = []byte(sdp)
	} else if req.IsInvite() {
		answer = []byte(c.localSDP())
	}
	hdrs := []sip.Header{t.contact(req), sip.NewHeader("Allow", allowed)}
	if answer != nil {
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	t.reinvites.Add(1) // before the answer: a caller that saw 200 sees the count
	if err := t.respond(req, tx, sip.StatusOK, "OK", "", answer, hdrs...); err != nil {
		t.log.Debug("echotrunk: in-dialog answer", "error", err)
	}
}

func (t *Trunk) wantsUser(req *sip.Request) bool {
	return t.opts.User == "*" || req.Recipient.User == t.opts.User
}

func isSDP(req *sip.Request) bool {
	ct := req.ContentType()
	if ct == nil {
		return false
	}
	v, _, _ := strings.Cut(ct.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(v), "application/sdp")
}

func callID(req *sip.Request) string {
	if id := req.CallID(); id != nil {
		return string(*id)
	}
	return ""
}

func newTag() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
