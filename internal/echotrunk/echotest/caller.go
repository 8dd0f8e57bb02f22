// Package echotest is the browser's side of a call to the echo trunk, for
// tests: a pion PeerConnection on loopback that sends Opus RTP and counts
// the packets that come back.
package echotest

import (
	"context"
	"crypto/rand"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Caller is a WebRTC caller with one Opus track.
type Caller struct {
	// PC is the caller's PeerConnection; tests set the answer on it.
	PC     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticSample
	echoed atomic.Int64
	want   int64
	got    chan struct{}
}

// NewCaller makes a caller whose Echoed channel closes once want RTP
// packets have come back. It is closed when the test ends.
func NewCaller(t testing.TB, want int64) *Caller {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatalf("codecs: %v", err)
	}
	var s webrtc.SettingEngine
	s.SetIncludeLoopbackCandidate(true)
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("peer connection: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "caller")
	if err != nil {
		t.Fatalf("track: %v", err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatalf("add track: %v", err)
	}
	c := &Caller{PC: pc, track: track, want: want, got: make(chan struct{})}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := remote.ReadRTP(); err != nil {
				return
			}
			if c.echoed.Add(1) == c.want {
				close(c.got)
			}
		}
	})
	return c
}

// Offer returns a complete (non-trickle) SDP offer, waiting at most
// timeout for ICE gathering.
func (c *Caller) Offer(t testing.TB, timeout time.Duration) string {
	t.Helper()
	offer, err := c.PC.CreateOffer(nil)
	if err != nil {
		t.Fatalf("create offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(c.PC)
	if err := c.PC.SetLocalDescription(offer); err != nil {
		t.Fatalf("set offer: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(timeout):
		t.Fatal("ICE gathering did not complete")
	}
	return c.PC.LocalDescription().SDP
}

// Send writes 20 ms Opus-sized samples until ctx ends.
func (c *Caller) Send(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, 80)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			rand.Read(payload)
			if err := c.track.WriteSample(media.Sample{Data: payload, Duration: 20 * time.Millisecond}); err != nil {
				return
			}
		}
	}
}

// Echoed is closed once the wanted number of packets came back.
func (c *Caller) Echoed() <-chan struct{} { return c.got }

// Count is how many RTP packets came back so far.
func (c *Caller) Count() int64 { return c.echoed.Load() }
