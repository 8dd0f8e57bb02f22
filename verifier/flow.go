package verifier

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"strings"
)

// A flow token names both sides of one dialog in the user part of the
// edge's Record-Route: the visitor's side (transport and address, so that
// in-dialog requests from the trunk find the visitor's connection without
// dialog state) and the trunk's side (the configured route or upstream the
// visitor called, or the trunk address that called the visitor). It is
// HMAC-protected and bound to the dialog's Call-ID, so nobody can make the
// edge send to an address of their choosing, nor reuse the token of one
// dialog in another.

var transportCodes = []string{"UDP", "TCP", "TLS", "WS", "WSS"}

// maxFlowToken bounds the length of a flow token read from a Route.
const maxFlowToken = 120

// flowMACSize is the length of the truncated HMAC of a flow token.
const flowMACSize = 10

// Flags of a flow token.
const (
	flowInbound = 1 << iota // the trunk called the visitor
	flowRefer               // the visitor's grant allows REFER
)

type flow struct {
	transport string         // the visitor's transport
	addr      netip.AddrPort // the visitor's address
	// inbound is set when the trunk sent the dialog-creating request.
	inbound bool
	// refer is set when the credential that created the dialog allows
	// REFER.
	refer bool
	// route names the trunk of an outbound dialog: 0 for the upstream,
	// i+1 for e.routeNames[i].
	route uint64
	// trunkTransport and trunkAddr name the trunk of an inbound dialog.
	trunkTransport string
	trunkAddr      netip.AddrPort
}

func transportCode(t string) byte {
	for i, c := range transportCodes {
		if strings.EqualFold(c, t) {
			return byte(i)
		}
	}
	return 0
}

func appendAddr(b []byte, transport string, ap netip.AddrPort) []byte {
	raw, _ := ap.MarshalBinary()
	b = append(b, transportCode(transport), byte(len(raw)))
	return append(b, raw...)
}

func readAddr(b []byte) (transport string, ap netip.AddrPort, rest []byte, ok bool) {
	if len(b) < 2 || int(b[0]) >= len(transportCodes) || len(b) < 2+int(b[1]) {
		return "", ap, nil, false
	}
	if ap.UnmarshalBinary(b[2:2+int(b[1])]) != nil || !ap.IsValid() {
		return "", ap, nil, false
	}
	return transportCodes[b[0]], ap, b[2+int(b[1]):], true
}

// flowMAC is the truncated HMAC of a token's data bound to callID.
func (e *Edge) flowMAC(data []byte, callID string) []byte {
	m := hmac.New(sha256.New, e.flowKey)
	m.Write(data)
	m.Write([]byte{0})
	m.Write([]byte(callID))
	return m.Sum(nil)[:flowMACSize]
}

// flowToken encodes f for the dialog callID.
func (e *Edge) flowToken(f flow, callID string) string {
	var flags byte
	if f.inbound {
		flags |= flowInbound
	}
	if f.refer {
		flags |= flowRefer
	}
	data := appendAddr([]byte{flags}, f.transport, f.addr)
	if f.inbound {
		data = appendAddr(data, f.trunkTransport, f.trunkAddr)
	} else {
		data = binary.AppendUvarint(data, f.route)
	}
	return "f" + base64.RawURLEncoding.EncodeToString(append(data, e.flowMAC(data, callID)...))
}

// parseFlow decodes a flow token made by this edge for the dialog callID.
func (e *Edge) parseFlow(tok, callID string) (flow, bool) {
	if !strings.HasPrefix(tok, "f") || len(tok) > maxFlowToken {
		return flow{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok[1:])
	if err != nil || len(raw) < 1+flowMACSize {
		return flow{}, false
	}
	data, mac := raw[:len(raw)-flowMACSize], raw[len(raw)-flowMACSize:]
	if !hmac.Equal(e.flowMAC(data, callID), mac) {
		return flow{}, false
	}
	f := flow{inbound: data[0]&flowInbound != 0, refer: data[0]&flowRefer != 0}
	rest := data[1:]
	var ok bool
	if f.transport, f.addr, rest, ok = readAddr(rest); !ok {
		return flow{}, false
	}
	if f.inbound {
		if f.trunkTransport, f.trunkAddr, rest, ok = readAddr(rest); !ok {
			return flow{}, false
		}
	} else {
		var n int
		if f.route, n = binary.Uvarint(rest); n <= 0 {
			return flow{}, false
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return flow{}, false
	}
	return f, true
}
