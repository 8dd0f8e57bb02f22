// Package echotrunk is the demo's test trunk: a small SIP user agent
// server that answers INVITEs for one user (sip:echo@…) with real WebRTC
// media and sends every RTP audio packet it receives straight back.
//
// A browser's WebRTC offer (UDP/TLS/RTP/SAVPF, ICE, DTLS-SRTP) reaches the
// trunk unchanged through the edge proxy. The trunk answers it with a
// github.com/pion/webrtc PeerConnection: ICE candidates are gathered only on
// the configured local addresses (127.0.0.1 by default, no STUN, no TURN),
// gathering completes before the answer is sent (no trickle ICE), and the
// answer goes out in a 200 OK after a 180 Ringing.
//
// Dialog handling is deliberately small: ACK confirms, BYE ends the call
// and closes the PeerConnection, CANCEL before the answer ends in 487
// (answered by sipgo's transaction layer), a re-INVITE or UPDATE with an
// offer renegotiates the PeerConnection (488 when that fails), one without
// an offer gets the current SDP again. Calls are bounded by MaxCallDuration.
//
// The trunk listens on UDP and TCP (127.0.0.1:5070 in the demo) and, for
// tests of a page without an edge, on WebSocket with Options.Registrar
// accepting every REGISTER unauthenticated — never expose that setting.
//
// Message size: sipgo refuses to send UDP messages larger than
// sip.UDPMTUSize-200 bytes (1300 by default) but reads datagrams up to
// 32 KB, so the trunk receives a browser INVITE (~2.3 KB) over UDP; its own
// answers (one loopback candidate) stay well under the limit. The sender
// of the INVITE — the edge — must raise sip.UDPMTUSize or use TCP. The demo
// command raises it for the whole process (loopback MTU is 64 KB).
//
// The trunk logs no credentials: it never sees any (the edge strips
// Authorization before proxying).
package echotrunk
