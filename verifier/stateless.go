package verifier

import (
	"bytes"
	"net"
	"net/netip"

	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// The first REGISTER of a Digest or Bearer client carries no credentials
// and is answered 401. Over UDP the edge answers it statelessly, as
// Kamailio's sl_send_reply does, from the transport's read filter: no
// server transaction, no goroutine, nothing kept. A retransmission gets a
// fresh challenge, which is harmless.

// maxStatelessWorkers bounds the REGISTERs with credentials handled at
// once on the stateless UDP path; past it they are answered 503.
const maxStatelessWorkers = 1024

var (
	registerPrefix = []byte("REGISTER ")
	authzHeader    = []byte("authorization:")
	crlfCRLF       = []byte("\r\n\r\n")
)

// readFilter handles UDP REGISTERs statelessly and passes everything else
// on to the SIP stack: one without credentials is answered 401 at once;
// one with credentials is authenticated and applied on its own goroutine
// and answered without a server transaction (REGISTER is idempotent: a
// retransmission is simply handled again, a token-cache hit).
func (e *Edge) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	if !strings.EqualFold(info.Transport, "udp") || !bytes.HasPrefix(data, registerPrefix) || !e.authenticate[sip.REGISTER] {
		return data, nil
	}
	ua, ok := info.RemoteAddr.(*net.UDPAddr)
	if !ok {
		return data, nil
	}
	src := ua.AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if e.isTrunk(src) {
		return data, nil
	}
	conn := e.udpConnFor(info.LocalAddr)
	if conn == nil {
		return data, nil
	}
	msg, err := e.parser.ParseSIP(data)
	if err != nil {
		return data, nil // let the stack answer 400
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return data, nil
	}
	req.SetSource(ua.String())
	req.SetTransport("UDP")
	if hasAuthorization(data) {
		select {
		case e.workers <- struct{}{}:
			go func() {
				defer func() { <-e.workers }()
				e.handle(req, &statelessTx{e: e, conn: conn, dst: ua})
			}()
		default:
			// Overloaded: the client retransmits (UDP) or tries later.
			e.metrics.requests.WithLabelValues("REGISTER").Inc()
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "1"))
			(&statelessTx{e: e, conn: conn, dst: ua}).Respond(res)
		}
		return nil, nil
	}
	e.metrics.requests.WithLabelValues("REGISTER").Inc()
	e.metrics.auth.WithLabelValues("none", "challenge", "no_credentials").Inc()
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	e.addChallenges(res, "WWW-Authenticate", false, false)
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	conn.WriteTo(buf.Bytes(), ua)
	bufPool.Put(buf)
	return nil, nil
}

// hasAuthorization reports whether the header part of a raw message has
// an Authorization or Proxy-Authorization header (any case).
func hasAuthorization(data []byte) bool {
	end := bytes.Index(data, crlfCRLF)
	if end < 0 {
		end = len(data)
	}
	hdr := data[:end]
	for i := 0; i+len(authzHeader) <= len(hdr); i++ {
		c := hdr[i] | 0x20
		if c != 'a' {
			continue
		}
		if asciiHasPrefixFold(hdr[i:], authzHeader) {
			return true
		}
	}
	return false
}

func asciiHasPrefixFold(s, prefix []byte) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i, p := range prefix {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p {
			return false
		}
	}
	return true
}

// udpConnFor finds the listening UDP socket with local address laddr.
func (e *Edge) udpConnFor(laddr net.Addr) net.PacketConn {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.bound {
		if b.conn != nil && (laddr == nil || b.conn.LocalAddr().String() == laddr.String()) {
			return b.conn
		}
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// statelessTx is the sip.ServerTransaction of a request handled without
// a transaction: responses are written straight to the UDP socket.
type statelessTx struct {
	e    *Edge
	conn net.PacketConn
	dst  *net.UDPAddr
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (t *statelessTx) Respond(res *sip.Response) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	_, err := t.conn.WriteTo(buf.Bytes(), t.dst)
	bufPool.Put(buf)
	return err
}
func (t *statelessTx) Acks() <-chan *sip.Request          { return nil }
func (t *statelessTx) OnCancel(sip.FnTxCancel) bool       { return false }
func (t *statelessTx) Terminate()                         {}
func (t *statelessTx) OnTerminate(sip.FnTxTerminate) bool { return false }
func (t *statelessTx) Done() <-chan struct{}              { return closedChan }
func (t *statelessTx) Err() error                         { return nil }

var _ sip.ServerTransaction = (*statelessTx)(nil)
