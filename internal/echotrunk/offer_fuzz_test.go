package echotrunk

import (
	"context"
	"testing"
)

// FuzzOffer answers arbitrary SDP offers: a bad offer must end in an
// error (488 on the wire), never a panic.
func FuzzOffer(f *testing.F) {
	tr, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tr.Close() })
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=setup:actpass\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=sendrecv\r\n")
	f.Add("v=0\r\nm=video 9 RTP/AVP 0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, offer string) {
		ctx, cancel := context.WithCancel(tr.ctx)
		c := &call{t: tr, id: "fuzz", tag: "t", acked: make(chan struct{}), ctx: ctx, cancel: cancel}
		c.start(offer)
		c.close()
	})
}
