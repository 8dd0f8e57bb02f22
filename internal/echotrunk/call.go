package echotrunk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// opusCodec is the only audio codec the trunk negotiates: the echo sends
// back exactly what it receives, so both directions use one codec.
var opusCodec = webrtc.RTPCodecCapability{
	MimeType:    webrtc.MimeTypeOpus,
	ClockRate:   48000,
	Channels:    2,
	SDPFmtpLine: "minptime=10;useinbandfec=1",
}

// mediaEngine builds PeerConnections restricted to local ICE addresses.
type mediaEngine struct {
	api *webrtc.API
}

func newMediaEngine(addrs []netip.Addr, log *slog.Logger) (*mediaEngine, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCodec, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register opus: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	var s webrtc.SettingEngine
	loopback := slices.ContainsFunc(addrs, netip.Addr.IsLoopback)
	s.SetIncludeLoopbackCandidate(loopback)
	s.SetIPFilter(func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && slices.Contains(addrs, a.Unmap())
	})
	var types []webrtc.NetworkType
	if slices.ContainsFunc(addrs, netip.Addr.Is4) {
		types = append(types, webrtc.NetworkTypeUDP4)
	}
	if slices.ContainsFunc(addrs, func(a netip.Addr) bool { return a.Is6() }) {
		types = append(types, webrtc.NetworkTypeUDP6)
	}
	s.SetNetworkTypes(types)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return &mediaEngine{api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s))}, nil
}

// call is one dialog of the trunk.
type call struct {
	t       *Trunk
	id      string
	tag     string
	pc      *webrtc.PeerConnection
	acked   chan struct{}
	ackOnce sync.Once
	ctx     context.Context // ends when the call ends or is canceled
	cancel  context.CancelFunc
	mu      sync.Mutex // serialises renegotiation
	endOnce sync.Once
	timer   *time.Timer
	answer  bool // answered with 200
}

// newCall runs a new INVITE to its final answer: offer, PeerConnection,
// complete ICE gathering, 180, AnswerDelay, 200 with the answer SDP.
func (t *Trunk) newCall(req *sip.Request, tx sip.ServerTransaction) error {
	if !t.wantsUser(req) {
		t.reject(req, tx, sip.StatusNotFound, "Not Found")
		return fmt.Errorf("user %q is not %q", req.Recipient.User, t.opts.User)
	}
	body := req.Body()
	if len(body) == 0 || !isSDP(req) {
		t.reject(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return errors.New("INVITE without an SDP offer")
	}
	if len(body) > MaxSDPSize {
		t.reject(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return fmt.Errorf("SDP offer of %d bytes", len(body))
	}
	if err := t.respond(req, tx, sip.StatusTrying, "Trying", "", nil); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(t.ctx)
	c := &call{t: t, id: callID(req), tag: newTag(), acked: make(chan struct{}), ctx: ctx, cancel: cancel}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel()
		t.reject(req, tx, sip.StatusServiceUnavailable, "Service Unavailable")
		return ErrClosed
	}
	if _, dup := t.calls[c.id]; dup {
		t.mu.Unlock()
		cancel()
		t.reject(req, tx, sip.StatusLoopDetected, "Loop Detected")
		return fmt.Errorf("call %q exists", c.id)
	}
	t.calls[c.id] = c
	t.mu.Unlock()

	canceled := make(chan struct{})
	// Counted in the callback, which runs before sipgo sends the 487.
	if !tx.OnCancel(func(*sip.Request) { t.canceled.Add(1); close(canceled) }) {
		t.forget(c)
		return errors.New("INVITE transaction ended before the answer")
	}

	answer, err := c.start(string(body))
	if err != nil {
		t.forget(c)
		if errors.Is(err, ErrClosed) {
			t.reject(req, tx, sip.StatusServiceUnavailable, "Service Unavailable")
		} else {
			t.reject(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		}
		return fmt.Errorf("answer offer: %w", err)
	}
	if err := t.respond(req, tx, sip.StatusRinging, "Ringing", c.tag, nil, t.contact(req)); err != nil {
		t.forget(c)
		return err
	}
	if t.opts.AnswerDelay > 0 {
		timer := time.NewTimer(t.opts.AnswerDelay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-canceled:
		case <-tx.Done():
		case <-ctx.Done():
		}
	}
	select {
	case <-canceled:
		t.forget(c)
		return sip.ErrTransactionCanceled
	case <-tx.Done():
		t.forget(c)
		return fmt.Errorf("INVITE transaction ended before the answer: %w", tx.Err())
	case <-ctx.Done():
		t.forget(c)
		t.reject(req, tx, sip.StatusServiceUnavailable, "Service Unavailable")
		return ErrClosed
	default:
	}

	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", []byte(answer))
	res.To().Params.Add("tag", c.tag)
	res.AppendHeader(t.contact(req))
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	t.answered.Add(1)
	t.active.Add(1)
	c.mu.Lock()
	c.answer = true
	c.timer = time.AfterFunc(t.opts.MaxCallDuration, func() { t.endCall(c, "max call duration") })
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		t.endCall(c, "200 not sent")
		return fmt.Errorf("respond 200: %w", err)
	}
	t.log.Info("echotrunk: call answered", "call_id", c.id, "transport", req.Transport())
	if !sip.IsReliable(req.Transport()) {
		t.retransmit200(c, tx, res)
	}
	return nil
}

// retransmit200 resends the 2xx over an unreliable transport until the ACK
// arrives, for at most 64*T1 (RFC 3261 13.3.1.4).
func (t *Trunk) retransmit200(c *call, tx sip.ServerTransaction, res *sip.Response) {
	interval := sip.T1
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	for range 11 {
		timer := time.NewTimer(interval)
		select {
		case <-c.acked:
			timer.Stop()
			return
		case <-c.ctx.Done():
			timer.Stop()
			return
		case <-deadline.C:
			timer.Stop()
			return
		case <-timer.C:
			if err := tx.Respond(res); err != nil {
				return
			}
			interval = min(2*interval, sip.T2)
		}
	}
}

// start builds the PeerConnection for offer and returns the answer SDP
// with every local candidate in it.
func (c *call) start(offer string) (string, error) {
	pc, err := c.t.media.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("peer connection: %w", err)
	}
	c.mu.Lock()
	c.pc = pc
	c.mu.Unlock()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("set offer: %w", err)
	}
	local, err := webrtc.NewTrackLocalStaticRTP(opusCodec, "audio", "echo")
	if err != nil {
		return "", fmt.Errorf("local track: %w", err)
	}
	sender, err := pc.AddTrack(local)
	if err != nil {
		return "", fmt.Errorf("add track: %w", err)
	}
	go drainRTCP(sender)
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if remote.Kind() == webrtc.RTPCodecTypeAudio {
			c.echo(remote, local)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.t.log.Debug("echotrunk: media state", "call_id", c.id, "state", s.String())
	})
	sdp, err := c.answerOffer(pc)
	if err != nil {
		return "", err
	}
	if !strings.Contains(sdp, "a=candidate:") {
		return "", errors.New("no ICE candidate on the configured addresses")
	}
	return sdp, nil
}

// answerOffer creates and sets pc's answer to the offer it was given, and
// returns it once ICE gathering is complete, so that every candidate is
// in it.
func (c *call) answerOffer(pc *webrtc.PeerConnection) (string, error) {
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("set answer: %w", err)
	}
	timer := time.NewTimer(c.t.opts.GatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		return "", fmt.Errorf("ICE gathering took more than %s", c.t.opts.GatherTimeout)
	case <-c.ctx.Done():
		return "", ErrClosed
	}
	return pc.LocalDescription().SDP, nil
}

// echo writes every RTP packet of remote back on local until the track ends.
func (c *call) echo(remote *webrtc.TrackRemote, local *webrtc.TrackLocalStaticRTP) {
	for {
		pkt, _, err := remote.ReadRTP()
		if err != nil {
			return
		}
		c.t.rtpIn.Add(1)
		if err := local.WriteRTP(pkt); err != nil {
			if errors.Is(err, webrtc.ErrConnectionClosed) {
				return
			}
			continue
		}
		c.t.rtpOut.Add(1)
	}
}

func drainRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// renegotiate applies a new offer and returns the new answer SDP.
func (c *call) renegotiate(offer string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("set offer: %w", err)
	}
	return c.answerOffer(c.pc)
}

// localSDP is the current local description.
func (c *call) localSDP() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.pc.LocalDescription(); d != nil {
		return d.SDP
	}
	return ""
}

// forget drops a call that was never answered.
func (t *Trunk) forget(c *call) {
	t.mu.Lock()
	if t.calls[c.id] == c {
		delete(t.calls, c.id)
	}
	t.mu.Unlock()
	c.close()
}

// endCall ends an answered call once: drop it, close its media, count it.
func (t *Trunk) endCall(c *call, why string) {
	c.endOnce.Do(func() {
		t.mu.Lock()
		if t.calls[c.id] == c {
			delete(t.calls, c.id)
		}
		t.mu.Unlock()
		c.mu.Lock()
		answered := c.answer
		c.mu.Unlock()
		c.close()
		if answered {
			t.active.Add(-1)
			t.ended.Add(1)
		}
		t.log.Info("echotrunk: call ended", "call_id", c.id, "reason", why)
	})
}

func (c *call) close() {
	c.cancel()
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	pc := c.pc
	c.mu.Unlock()
	if pc != nil {
		if err := pc.Close(); err != nil {
			c.t.log.Debug("echotrunk: close peer connection", "call_id", c.id, "error", err)
		}
	}
}
