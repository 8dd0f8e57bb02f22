package verifier

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"strings"
)

// A flow token names the visitor side of a dialog (transport and address)
// in the user part of the edge's Record-Route, so that in-dialog requests
// from the trunk find the visitor's connection without dialog state. It is
// HMAC-protected: nobody can make the edge send to an address of their
// choosing.

var transportCodes = []string{"UDP", "TCP", "TLS", "WS", "WSS"}

type flow struct {
	transport string
	addr      netip.AddrPort
}

func (e *Edge) flowToken(f flow) string {
	code := byte(0)
	for i, t := range transportCodes {
		if t == f.transport {
			code = byte(i)
		}
	}
	raw, _ := f.addr.MarshalBinary()
	data := append([]byte{code}, raw...)
	m := hmac.New(sha256.New, e.flowKey)
	m.Write(data)
	return "f" + base64.RawURLEncoding.EncodeToString(append(data, m.Sum(nil)[:10]...))
}

func (e *Edge) parseFlow(tok string) (flow, bool) {
	if !strings.HasPrefix(tok, "f") || len(tok) > 80 {
		return flow{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok[1:])
	if err != nil || len(raw) < 1+10+2 {
		return flow{}, false
	}
	data, mac := raw[:len(raw)-10], raw[len(raw)-10:]
	m := hmac.New(sha256.New, e.flowKey)
	m.Write(data)
	if !hmac.Equal(m.Sum(nil)[:10], mac) || int(data[0]) >= len(transportCodes) {
		return flow{}, false
	}
	var ap netip.AddrPort
	if ap.UnmarshalBinary(data[1:]) != nil {
		return flow{}, false
	}
	return flow{transport: transportCodes[data[0]], addr: ap}, true
}
