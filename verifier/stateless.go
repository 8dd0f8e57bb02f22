package verifier

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/verifier/registrar"
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
	registerPrefix   = []byte("REGISTER ")
	authzHeader      = []byte("authorization")
	proxyAuthzHeader = []byte("proxy-authorization")
	crlfCRLF         = []byte("\r\n\r\n")
)

// readFilter handles UDP REGISTERs statelessly and passes everything else
// on to the SIP stack: one without credentials is answered 401 at once;
// one with credentials is authenticated and applied on a worker goroutine
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
	authorized := hasAuthorization(data)
	if !authorized && e.challengeRaw(data, conn, ua) {
		return nil, nil
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
	if authorized {
		select {
		case e.workers <- struct{}{}:
			e.dispatch(statelessJob{req: req, tx: &statelessTx{e: e, conn: conn, dst: ua}})
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

// workerIdle is how long a stateless worker goroutine waits for another
// REGISTER before it exits.
const workerIdle = 5 * time.Second

// statelessJob is a REGISTER with credentials for a stateless worker.
type statelessJob struct {
	req *sip.Request
	tx  *statelessTx
}

// dispatch hands j, whose worker slot is taken, to an idle worker, or to
// a new one when none is waiting: goroutines are reused, with their
// grown stacks, rather than started for each REGISTER.
func (e *Edge) dispatch(j statelessJob) {
	select {
	case e.idle <- j:
	default:
		go e.worker(j)
	}
}

// worker handles j, then the jobs dispatch gives it, until it has waited
// workerIdle for one or the edge closes.
func (e *Edge) worker(j statelessJob) {
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	for {
		e.handle(j.req, j.tx)
		<-e.workers
		timer.Reset(workerIdle)
		select {
		case j = <-e.idle:
		case <-timer.C:
			return
		case <-e.quit:
			return
		}
	}
}

// challengeRaw answers a REGISTER without credentials 401 straight from
// its bytes, without parsing it into a sip.Request: the response copies
// the Via, From, To, Call-ID and CSeq lines (RFC 3261 §8.2.6.2), adds a
// To tag if there is none and the challenges. It reports false, having
// sent nothing, for anything unusual (folded or bare-LF lines, a missing
// or repeated header, compact To/From with odd spacing is fine), which
// then takes the parsing path.
func (e *Edge) challengeRaw(data []byte, conn net.PacketConn, dst *net.UDPAddr) bool {
	end := bytes.Index(data, crlfCRLF)
	if end < 0 {
		return false
	}
	lineEnd := bytes.Index(data, crlf)
	if !bytes.HasSuffix(data[:lineEnd], sipVersionSuffix) {
		return false
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	buf.WriteString("SIP/2.0 401 Unauthorized\r\n")
	var seen [4]bool // From, To, Call-ID, CSeq
	vias := 0
	hdr := data[lineEnd+2 : end+2]
	for len(hdr) > 0 {
		i := bytes.Index(hdr, crlf)
		line := hdr[:i]
		hdr = hdr[i+2:]
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' || bytes.IndexByte(line, '\n') >= 0 || bytes.IndexByte(line, '\r') >= 0 {
			return false // folding or stray line breaks: let the parser judge
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		name := bytes.TrimRight(line[:colon], " \t")
		value := bytes.TrimSpace(line[colon+1:])
		kind := -1
		switch {
		case asciiEqualFold(name, "via") || asciiEqualFold(name, "v"):
			buf.WriteString("Via: ")
			buf.Write(value)
			buf.WriteString("\r\n")
			vias++
			continue
		case asciiEqualFold(name, "from") || asciiEqualFold(name, "f"):
			kind = 0
		case asciiEqualFold(name, "to") || asciiEqualFold(name, "t"):
			kind = 1
		case asciiEqualFold(name, "call-id") || asciiEqualFold(name, "i"):
			kind = 2
		case asciiEqualFold(name, "cseq"):
			kind = 3
		default:
			continue
		}
		if seen[kind] || len(value) == 0 {
			return false
		}
		seen[kind] = true
		buf.WriteString(rawNames[kind])
		buf.Write(value)
		if kind == 1 && !hasTagParam(value) {
			buf.WriteString(";tag=")
			buf.WriteString(e.tagPrefix)
			buf.WriteString(strconv.FormatUint(e.tagSeq.Add(1), 36))
		}
		buf.WriteString("\r\n")
	}
	if vias == 0 || !seen[0] || !seen[1] || !seen[2] || !seen[3] {
		return false
	}
	e.metrics.requests.WithLabelValues("REGISTER").Inc()
	e.metrics.auth.WithLabelValues("none", "challenge", "no_credentials").Inc()
	e.writeChallenges(buf, "WWW-Authenticate")
	buf.WriteString("Server: trunkpass-edge\r\nContent-Length: 0\r\n\r\n")
	conn.WriteTo(buf.Bytes(), dst)
	return true
}

var (
	crlf             = []byte("\r\n")
	sipVersionSuffix = []byte(" SIP/2.0")
	rawNames         = [...]string{"From: ", "To: ", "Call-ID: ", "CSeq: "}
)

// hasTagParam reports whether a From/To value has a tag parameter
// outside its <...> URI.
func hasTagParam(v []byte) bool {
	if i := bytes.LastIndexByte(v, '>'); i >= 0 {
		v = v[i:]
	}
	for {
		i := bytes.IndexByte(v, ';')
		if i < 0 {
			return false
		}
		v = bytes.TrimLeft(v[i+1:], " \t")
		if len(v) >= 4 && asciiEqualFold(v[:3], "tag") && (v[3] == '=' || v[3] == ' ' || v[3] == '\t') {
			return true
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasAuthorization reports whether the header part of a raw message has
// an Authorization or Proxy-Authorization header (any case).
func hasAuthorization(data []byte) bool {
	end := bytes.Index(data, crlfCRLF)
	if end < 0 {
		end = len(data)
	}
	hdr := data[:end]
	// Only line starts can begin a header name: jump from one to the next.
	for i := bytes.IndexByte(hdr, '\n'); i >= 0 && i+1 < len(hdr); {
		line := hdr[i+1:]
		switch line[0] | 0x20 {
		case 'a':
			if isHeader(line, authzHeader) {
				return true
			}
		case 'p':
			if isHeader(line, proxyAuthzHeader) {
				return true
			}
		}
		next := bytes.IndexByte(line, '\n')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// isHeader reports whether line is a header named name (lower case),
// whatever its case, with optional blanks before the colon.
func isHeader(line, name []byte) bool {
	if !asciiHasPrefixFold(line, name) {
		return false
	}
	rest := bytes.TrimLeft(line[len(name):], " \t")
	return len(rest) > 0 && rest[0] == ':'
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

// respondRegistered answers a REGISTER 200 OK listing the bindings bs
// with the seconds each has left at now. On the stateless UDP path the
// answer is written straight to the socket, with the same status line and
// headers as sip.NewResponseFromRequest gives (Via with received/rport,
// From, To with a tag, Call-ID, CSeq, Content-Length, Contacts), without
// building a sip.Response.
func (e *Edge) respondRegistered(tx sip.ServerTransaction, req *sip.Request, bs []registrar.Binding, now time.Time) {
	st, ok := tx.(*statelessTx)
	if !ok {
		e.respond(tx, req, 200, "OK", func(res *sip.Response) {
			for _, b := range bs {
				secs := int(b.Expires.Sub(now) / time.Second)
				res.AppendHeader(sip.NewHeader("Contact", b.Contact+";expires="+strconv.Itoa(max(secs, 0))))
			}
		})
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	e.writeOK(buf, req, bs, now)
	if _, err := st.conn.WriteTo(buf.Bytes(), st.dst); err != nil {
		e.log.Debug().Err(err).Int("status", 200).Msg("respond")
	}
	bufPool.Put(buf)
}

// writeOK writes the 200 OK of req to buf: see respondRegistered.
func (e *Edge) writeOK(buf *bytes.Buffer, req *sip.Request, bs []registrar.Binding, now time.Time) {
	buf.WriteString(req.SipVersion)
	buf.WriteString(" 200 OK\r\n")
	var num [20]byte
	first := true
	for _, h := range req.Headers() {
		if sip.HeaderToLower(h.Name()) != "via" {
			continue
		}
		if first {
			first = false
			// RFC 3581 §4, as sip.NewResponseFromRequest does it.
			if v, ok := h.(*sip.ViaHeader); ok {
				if val, exists := v.Params.Get("rport"); exists && val == "" {
					var kvs [8]sip.HeaderKV
					ps := append(sip.HeaderParams(kvs[:0]), v.Params...)
					host, port, _ := net.SplitHostPort(req.Source())
					ps = setParam(ps, "rport", port)
					ps = setParam(ps, "received", host)
					writeVia(buf, v, ps)
					buf.WriteString("\r\n")
					continue
				}
			}
		}
		if v, ok := h.(*sip.ViaHeader); ok {
			writeVia(buf, v, v.Params)
		} else {
			h.StringWrite(buf)
		}
		buf.WriteString("\r\n")
	}
	req.From().StringWrite(buf)
	buf.WriteString("\r\n")
	to := req.To()
	to.StringWrite(buf)
	if !to.Params.Has("tag") {
		buf.WriteString(";tag=")
		buf.WriteString(e.tagPrefix)
		buf.Write(strconv.AppendUint(num[:0], e.tagSeq.Add(1), 36))
	}
	buf.WriteString("\r\n")
	req.CallID().StringWrite(buf)
	buf.WriteString("\r\n")
	req.CSeq().StringWrite(buf)
	buf.WriteString("\r\nContent-Length: 0\r\n")
	for _, b := range bs {
		secs := int(b.Expires.Sub(now) / time.Second)
		buf.WriteString("Contact: ")
		buf.WriteString(b.Contact)
		buf.WriteString(";expires=")
		buf.Write(strconv.AppendInt(num[:0], int64(max(secs, 0)), 10))
		buf.WriteString("\r\n")
	}
	buf.WriteString("\r\n")
}

// setParam sets key to val in ps as (*sip.HeaderParams).Add does: the
// first one of that key takes the value, or it is appended.
func setParam(ps sip.HeaderParams, key, val string) sip.HeaderParams {
	for i := range ps {
		if ps[i].K == key {
			ps[i].V = val
			return ps
		}
	}
	return append(ps, sip.HeaderKV{K: key, V: val})
}

// writeVia writes the Via header v with the parameters params as
// (*sip.ViaHeader).StringWrite does, without its intermediate string.
func writeVia(buf *bytes.Buffer, v *sip.ViaHeader, params sip.HeaderParams) {
	buf.WriteString("Via: ")
	buf.WriteString(v.ProtocolName)
	buf.WriteByte('/')
	buf.WriteString(v.ProtocolVersion)
	buf.WriteByte('/')
	buf.WriteString(v.Transport)
	buf.WriteByte(' ')
	if isIPv6Literal(v.Host) {
		buf.WriteByte('[')
		buf.WriteString(v.Host)
		buf.WriteByte(']')
	} else {
		buf.WriteString(v.Host)
	}
	if v.Port > 0 {
		var num [20]byte
		buf.WriteByte(':')
		buf.Write(strconv.AppendInt(num[:0], int64(v.Port), 10))
	}
	if len(params) > 0 {
		buf.WriteByte(';')
		params.ToStringWrite(';', buf)
	}
}

// isIPv6Literal reports whether host is an IPv6 address that sipgo
// brackets when it writes a Via: one net.ParseIP takes (so no zone) and
// that is not an IPv4 address, and (a quirk of sipgo's check) whose text
// is at most 46 bytes.
func isIPv6Literal(host string) bool {
	if len(host) > 46 || strings.IndexByte(host, ':') < 0 {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is6() && !a.Is4In6() && a.Zone() == ""
}
