package verifier

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
	"github.com/trunkpass/trunkpass/verifier/auth"
	"github.com/trunkpass/trunkpass/verifier/registrar"
)

// isOurs reports whether uri names this edge: its host and one of its
// listening ports (or no port).
func (e *Edge) isOurs(uri *sip.Uri) bool {
	if !strings.EqualFold(uri.Host, e.host) {
		if ip, err := netip.ParseAddr(strings.Trim(uri.Host, "[]")); err != nil || !e.isLocalIP(ip) {
			return false
		}
	}
	if uri.Port == 0 {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.ports {
		if p == uri.Port {
			return true
		}
	}
	return false
}

func (e *Edge) isLocalIP(ip netip.Addr) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.bound {
		if ap, err := netip.ParseAddrPort(b.addr); err == nil && (ap.Addr() == ip || ap.Addr().IsUnspecified() && ip.IsLoopback()) {
			return true
		}
	}
	return false
}

// removeOurRoutes pops the Route entries naming this edge from the top of
// req (loose routing) and returns their user parts (flow tokens, if any).
func (e *Edge) removeOurRoutes(req *sip.Request) (users []string) {
	if firstHeader(req, "Route") == nil {
		return nil // spare sipgo's lazy Route lookup, which allocates
	}
	for {
		r := req.Route()
		if r == nil || !e.isOurs(&r.Address) {
			return users
		}
		users = append(users, r.Address.User)
		req.RemoveHeader(r.Name())
	}
}

// inDialog routes a request inside a dialog this edge record-routed: its
// top Route must be the edge's Record-Route with a flow token made for
// this Call-ID. A request from the visitor of the flow goes only to the
// dialog's trunk; one from a trunk only to the visitor's flow. Anything
// else is refused: the edge is no open relay.
func (e *Edge) inDialog(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	fwd := req.Clone()
	var f flow
	ok := false
	for _, u := range e.removeOurRoutes(fwd) {
		if f, ok = e.parseFlow(u, req.CallID().Value()); ok {
			break
		}
	}
	refuse := func(why string) {
		if req.Method != sip.ACK {
			e.logReject(zerolog.InfoLevel, req, src, "none", why, reasonNotInDialog)
			e.respond(tx, req, 403, reasonNotInDialog, nil)
		}
	}
	if !ok {
		refuse("no_flow")
		return
	}
	var dst target
	switch {
	case f.addr == src && strings.EqualFold(f.transport, req.Transport()):
		if req.Method == sip.REFER && !e.mayRefer(req, f, src) {
			e.logReject(zerolog.InfoLevel, req, src, "none", "method", "in-dialog REFER outside the grant")
			e.respond(tx, req, 403, ErrMethod.Error(), nil)
			return
		}
		var good bool
		if dst, good = e.trunkOf(fwd, f); !good {
			refuse("no_trunk")
			return
		}
	case e.isTrunk(src):
		dst = target{transport: f.transport, hostport: f.addr.String()}
	default:
		refuse("foreign_source")
		return
	}
	stripCredentials(fwd)
	if req.Method == sip.ACK {
		e.prepare(fwd, dst)
		if err := e.cli.WriteRequest(fwd, sipgo.ClientRequestDecreaseMaxForward, sipgo.ClientRequestAddVia); err != nil {
			e.log.Debug().Err(err).Msg("forward ACK")
		}
		return
	}
	e.relay(req, fwd, tx, dst, "")
}

// trunkOf is where an in-dialog request from the visitor of f goes: the
// next hop it names (next Route, else Request-URI) when that is a trunk
// address, else the trunk the dialog was made with.
func (e *Edge) trunkOf(fwd *sip.Request, f flow) (target, bool) {
	next := targetOf(fwd.Recipient)
	if r := fwd.Route(); r != nil {
		next = targetOf(r.Address)
	}
	if e.isTrunkTarget(next) {
		return next, true
	}
	if f.inbound {
		return target{transport: f.trunkTransport, hostport: f.trunkAddr.String()}, true
	}
	if f.route == 0 {
		if e.upstream == nil {
			return target{}, false
		}
		return *e.upstream, true
	}
	if f.route > uint64(len(e.routeNames)) {
		return target{}, false
	}
	return e.routes[e.routeNames[f.route-1]], true
}

// isTrunkTarget reports whether t is the address of a trunk: a configured
// upstream or route, or an address literal inside the trunks' addresses.
func (e *Edge) isTrunkTarget(t target) bool {
	if e.upstream != nil && strings.EqualFold(e.upstream.hostport, t.hostport) {
		return true
	}
	for _, r := range e.routes {
		if strings.EqualFold(r.hostport, t.hostport) {
			return true
		}
	}
	ap, err := netip.ParseAddrPort(t.hostport)
	if err != nil {
		return false
	}
	return e.isTrunk(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// mayRefer reports whether the visitor of f may send REFER in its dialog:
// the credential that made the dialog allows it, or the REFER carries
// credentials that verify and allow it.
func (e *Edge) mayRefer(req *sip.Request, f flow, src netip.AddrPort) bool {
	if f.refer {
		return true
	}
	if !hasCredentials(req) || e.limited(src.Addr()) {
		return false
	}
	id, err := e.authenticateRequest(req, src)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidCredentials) {
			e.failed(src.Addr())
		}
		return false
	}
	return Authorize(req, id, src) == nil
}

// allowsRefer reports whether id's grant allows REFER.
func allowsRefer(id *auth.Identity) bool {
	return id != nil && (id.Grant == nil || id.Grant.AllowsMethod(string(sip.REFER)))
}

// toTrunk proxies an out-of-dialog request from a visitor to the trunk of
// its customer (or the upstream).
func (e *Edge) toTrunk(req *sip.Request, tx sip.ServerTransaction, id *auth.Identity, src netip.AddrPort) {
	var dst target
	var route uint64
	if id != nil && id.Customer != "" {
		if t, ok := e.routes[id.Customer]; ok {
			dst = t
			i, _ := slices.BinarySearch(e.routeNames, id.Customer)
			route = uint64(i) + 1
		}
	}
	if dst.hostport == "" {
		if e.upstream == nil {
			e.respond(tx, req, 503, "Service Unavailable: no trunk configured", nil)
			return
		}
		dst = *e.upstream
	}
	fwd := req.Clone()
	stripCredentials(fwd)
	removeAll(fwd, "P-Asserted-Identity")
	if id != nil {
		fwd.AppendHeader(sip.NewHeader("P-Asserted-Identity", e.assertedIdentity(id)))
		if id.Grant != nil {
			for k, v := range id.Grant.Headers {
				removeAll(fwd, k)
				fwd.AppendHeader(sip.NewHeader(k, v))
			}
		}
	}
	if req.Method == sip.INVITE {
		e.metrics.calls.WithLabelValues("to_trunk").Inc()
	}
	visitor := flow{transport: strings.ToUpper(req.Transport()), addr: src, refer: allowsRefer(id), route: route}
	e.relay(req, fwd, tx, dst, e.flowToken(visitor, req.CallID().Value()))
}

// fromTrunk delivers an out-of-dialog request from the trunk to the
// registered visitor its Request-URI names.
func (e *Edge) fromTrunk(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort) {
	u := req.Recipient
	bs := e.table.Lookup(registrar.Key(u.User, u.Host))
	if len(bs) == 0 && u.User != "" {
		bs = e.table.LookupUser(u.User, e.trunkCustomer(src))
	}
	if len(bs) == 0 {
		e.respond(tx, req, 480, "Temporarily Unavailable", nil)
		return
	}
	b := bs[len(bs)-1]
	fwd := req.Clone()
	e.removeOurRoutes(fwd)
	var contact sip.Uri
	if err := sip.ParseUri(b.URI, &contact); err == nil {
		fwd.Recipient = contact
	}
	if req.Method == sip.INVITE {
		e.metrics.calls.WithLabelValues("to_visitor").Inc()
	}
	visitor := flow{transport: b.Transport, addr: b.Source, inbound: true,
		trunkTransport: strings.ToUpper(req.Transport()), trunkAddr: src}
	e.relay(req, fwd, tx, target{transport: b.Transport, hostport: b.Source.String()}, e.flowToken(visitor, req.CallID().Value()))
}

// assertedIdentity is the P-Asserted-Identity of id: its AOR, in the
// edge's realm when the AOR names no host (never the host of the
// visitor's own From, which the credential does not vouch for).
func (e *Edge) assertedIdentity(id *auth.Identity) string {
	aor := id.AOR
	if i := strings.IndexByte(aor, ':'); i >= 0 && i < 5 {
		aor = aor[i+1:]
	}
	if !strings.Contains(aor, "@") {
		aor += "@" + e.cfg.Realm
	}
	return "<sip:" + aor + ">"
}

// firstHeader is the first header of req named name (any case), found
// without the allocations of req.GetHeader.
func firstHeader(req *sip.Request, name string) sip.Header {
	for _, h := range req.Headers() {
		if strings.EqualFold(h.Name(), name) {
			return h
		}
	}
	return nil
}

// stripCredentials removes the credentials the edge consumed.
func stripCredentials(req *sip.Request) {
	removeAll(req, "Authorization")
	removeAll(req, "Proxy-Authorization")
}

// removeAll removes every header named name, whatever its case.
func removeAll(req *sip.Request, name string) {
	for _, h := range req.Headers() {
		if strings.EqualFold(h.Name(), name) {
			req.RemoveHeader(h.Name())
		}
	}
}

// prepare points fwd at dst.
func (e *Edge) prepare(fwd *sip.Request, dst target) {
	fwd.SetTransport(dst.transport)
	fwd.SetDestination(dst.hostport)
	if dst.transport == "UDP" && e.udpAddr != nil {
		fwd.Laddr = sip.Addr{IP: e.udpAddr.IP, Port: e.udpAddr.Port}
	} else {
		fwd.Laddr = sip.Addr{}
	}
}

// recordRoute returns this edge's Record-Route entry for transport,
// carrying the dialog's flow token.
func (e *Edge) recordRoute(transport, token string) *sip.RecordRouteHeader {
	e.mu.Lock()
	port := e.ports[strings.ToUpper(transport)]
	e.mu.Unlock()
	rr := &sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: e.host, Port: port,
		UriParams: sip.HeaderParams{{K: "transport", V: strings.ToLower(transport)}, {K: "lr", V: ""}}}}
	rr.Address.User = token
	return rr
}

// relay forwards fwd (a clone of req) to dst statefully and relays the
// responses back on tx; a CANCEL of req is sent on. An out-of-dialog
// request (token set) is record-routed on both sides with its flow token.
func (e *Edge) relay(req, fwd *sip.Request, tx sip.ServerTransaction, dst target, token string) {
	e.prepare(fwd, dst)
	if token != "" {
		// Inbound side first, then outbound side on top (RFC 3261 16.6).
		fwd.PrependHeader(e.recordRoute(req.Transport(), token))
		if !strings.EqualFold(req.Transport(), dst.transport) {
			fwd.PrependHeader(e.recordRoute(dst.transport, token))
		}
	}
	timeout := 32 * time.Second
	if req.Method == sip.INVITE {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	clTx, err := e.cli.TransactionRequest(ctx, fwd, sipgo.ClientRequestDecreaseMaxForward, sipgo.ClientRequestAddVia)
	if err != nil {
		if strings.Contains(err.Error(), "max forwards") {
			e.respond(tx, req, 483, "Too Many Hops", nil)
			return
		}
		e.log.Warn().Err(err).Str("method", string(req.Method)).Str("dst", dst.hostport).Msg("forward failed")
		e.respond(tx, req, 503, "Service Unavailable", nil)
		return
	}
	defer clTx.Terminate()
	var canceled atomic.Bool
	if req.Method == sip.INVITE {
		// sipgo answers the CANCEL (200) and the INVITE (487) itself; the
		// CANCEL must go on to the trunk at once.
		tx.OnCancel(func(*sip.Request) {
			if canceled.CompareAndSwap(false, true) {
				e.forwardCancel(fwd)
			}
		})
	}
	for {
		select {
		case res, ok := <-clTx.Responses():
			if !ok {
				return
			}
			if res.StatusCode == 100 {
				continue
			}
			accepted := req.Method == sip.INVITE && res.StatusCode >= 200 && res.StatusCode < 300
			if accepted && canceled.Load() {
				// The trunk answered before our CANCEL reached it (RFC 3261
				// §9.1 allows this race); the visitor already has its 487.
				e.endCanceledCall(fwd, res, dst)
				return
			}
			out := res.Clone()
			out.RemoveHeader("Via")
			out.SetTransport(req.Transport())
			out.SetDestination(req.Source())
			if err := tx.Respond(out); err != nil {
				if accepted && canceled.Load() {
					// The CANCEL came while the 2xx was on its way.
					e.endCanceledCall(fwd, res, dst)
					return
				}
				if !canceled.Load() {
					e.log.Debug().Err(err).Int("status", res.StatusCode).Msg("relay response")
				}
			}
			if res.StatusCode >= 200 {
				return
			}
		case <-clTx.Done():
			if !canceled.Load() {
				code, why := 408, "Request Timeout"
				if err := clTx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTimeout) {
					code, why = 503, "Service Unavailable"
				}
				e.respond(tx, req, code, why, nil)
			}
			return
		}
	}
}

// endCanceledCall ends the call a trunk accepted (res, a 2xx to the
// forwarded INVITE fwd) after the visitor had cancelled it: the edge, as
// the UAC towards the trunk, sends the ACK of the 2xx and then a BYE, so
// that no half-open call is left on the trunk. Both go to dst, where the
// INVITE went, with the Request-URI of the 2xx's Contact and the route set
// of the Record-Route entries the trunk side added above the edge's own.
func (e *Edge) endCanceledCall(fwd *sip.Request, res *sip.Response, dst target) {
	e.log.Info().Str("call_id", fwd.CallID().Value()).Int("status", res.StatusCode).
		Msg("trunk accepted a cancelled call; sending ACK and BYE")
	ack := e.dialogRequest(sip.ACK, fwd, res, 0)
	e.prepare(ack, dst)
	if err := e.cli.WriteRequest(ack, sipgo.ClientRequestAddVia); err != nil {
		e.log.Warn().Err(err).Msg("ACK of a 2xx to a cancelled INVITE")
	}
	bye := e.dialogRequest(sip.BYE, fwd, res, 1)
	e.prepare(bye, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	go func() {
		defer cancel()
		tx, err := e.cli.TransactionRequest(ctx, bye, sipgo.ClientRequestAddVia)
		if err != nil {
			e.log.Warn().Err(err).Msg("BYE of a cancelled call")
			return
		}
		defer tx.Terminate()
		for {
			select {
			case r := <-tx.Responses():
				if r != nil && r.StatusCode < 200 {
					continue
				}
			case <-tx.Done():
			case <-ctx.Done():
			}
			return
		}
	}()
}

// dialogRequest builds an ACK or BYE of the dialog that the 2xx res to the
// forwarded INVITE fwd set up, with the INVITE's CSeq number plus
// cseqStep. The Via is added when it is sent.
func (e *Edge) dialogRequest(method sip.RequestMethod, fwd *sip.Request, res *sip.Response, cseqStep uint32) *sip.Request {
	ruri := fwd.Recipient
	if c := res.Contact(); c != nil {
		ruri = c.Address
	}
	r := sip.NewRequest(method, *ruri.Clone())
	r.SipVersion = fwd.SipVersion
	// Route set: the Record-Route entries above the edge's own, reversed.
	var routes []sip.Uri
	for _, h := range res.GetHeaders("Record-Route") {
		rr, ok := h.(*sip.RecordRouteHeader)
		if !ok || e.isOurs(&rr.Address) {
			break
		}
		routes = append(routes, rr.Address)
	}
	for i := len(routes) - 1; i >= 0; i-- {
		r.AppendHeader(&sip.RouteHeader{Address: *routes[i].Clone()})
	}
	maxfwd := sip.MaxForwardsHeader(70)
	r.AppendHeader(&maxfwd)
	if h := fwd.From(); h != nil {
		r.AppendHeader(sip.HeaderClone(h))
	}
	if h := res.To(); h != nil {
		r.AppendHeader(sip.HeaderClone(h))
	}
	if h := fwd.CallID(); h != nil {
		r.AppendHeader(sip.HeaderClone(h))
	}
	if h := fwd.CSeq(); h != nil {
		r.AppendHeader(&sip.CSeqHeader{SeqNo: h.SeqNo + cseqStep, MethodName: method})
	}
	r.SetBody(nil)
	return r
}

// forwardCancel sends a CANCEL for the forwarded INVITE fwd (same Via branch,
// Route and destination).
func (e *Edge) forwardCancel(fwd *sip.Request) {
	c := sip.NewRequest(sip.CANCEL, *fwd.Recipient.Clone())
	c.SipVersion = fwd.SipVersion
	if v := fwd.Via(); v != nil {
		c.AppendHeader(v.Clone())
	}
	for _, r := range fwd.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(r))
	}
	maxfwd := sip.MaxForwardsHeader(70)
	c.AppendHeader(&maxfwd)
	if h := fwd.From(); h != nil {
		c.AppendHeader(sip.HeaderClone(h))
	}
	if h := fwd.To(); h != nil {
		c.AppendHeader(sip.HeaderClone(h))
	}
	if h := fwd.CallID(); h != nil {
		c.AppendHeader(sip.HeaderClone(h))
	}
	if h := fwd.CSeq(); h != nil {
		c.AppendHeader(&sip.CSeqHeader{SeqNo: h.SeqNo, MethodName: sip.CANCEL})
	}
	c.SetBody(nil)
	c.SetTransport(fwd.Transport())
	c.SetDestination(fwd.Destination())
	c.Laddr = fwd.Laddr
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	go func() {
		defer cancel()
		tx, err := e.cli.TransactionRequest(ctx, c)
		if err != nil {
			e.log.Debug().Err(err).Msg("forward CANCEL")
			return
		}
		defer tx.Terminate()
		select {
		case <-tx.Responses():
		case <-tx.Done():
		case <-ctx.Done():
		}
	}()
}

// register applies a REGISTER: bindings never outlive the credential.
func (e *Edge) register(req *sip.Request, tx sip.ServerTransaction, id *auth.Identity, src netip.AddrPort) {
	to := req.To()
	aor := registrar.Key(to.Address.User, to.Address.Host)
	now := e.now()
	defaultExp := e.cfg.MaxExpires
	if h := firstHeader(req, "Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			e.respond(tx, req, 400, "Bad Request: Expires", nil)
			return
		}
		defaultExp = n
	}
	var contacts []sip.Header
	for _, h := range req.Headers() {
		if strings.EqualFold(h.Name(), "Contact") {
			contacts = append(contacts, h)
		}
	}
	var customer string
	if id != nil {
		customer = id.Customer
	}
	var bs []registrar.Binding
	switch {
	case len(contacts) == 1 && strings.TrimSpace(contacts[0].Value()) == "*":
		if defaultExp != 0 {
			e.respond(tx, req, 400, "Bad Request: Contact * needs Expires: 0", nil)
			return
		}
		e.table.RemoveAll(aor)
		e.metrics.registers.WithLabelValues("unregistered").Inc()
		e.respondRegistered(tx, req, nil, now)
		return
	case len(contacts) == 0:
		bs = e.table.Lookup(aor)
		e.metrics.registers.WithLabelValues("query").Inc()
	case len(contacts) > e.cfg.MaxContacts:
		e.respond(tx, req, 403, reasonTooManyContacts, nil)
		return
	default:
		updates := make([]registrar.Binding, 0, len(contacts))
		for _, h := range contacts {
			c, ok := h.(*sip.ContactHeader)
			if !ok || c.Address.Wildcard {
				e.respond(tx, req, 400, "Bad Request: Contact", nil)
				return
			}
			exp := defaultExp
			if v, ok := c.Params.Get("expires"); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					e.respond(tx, req, 400, "Bad Request: Contact expires", nil)
					return
				}
				exp = n
			}
			exp = min(exp, e.cfg.MaxExpires)
			until := now.Add(time.Duration(exp) * time.Second)
			if id != nil && !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(until) {
				until = id.ExpiresAt
			}
			if exp == 0 {
				until = now
			}
			contact := ""
			if c.Params.Has("expires") {
				cc := c.Clone()
				cc.Params.Remove("expires")
				contact = cc.Value()
			} else {
				contact = c.Value()
			}
			uri := c.Address.String()
			if i := strings.Index(contact, uri); i >= 0 {
				uri = contact[i : i+len(uri)] // share the Contact's memory
			}
			updates = append(updates, registrar.Binding{
				Contact: contact, URI: uri, Source: src,
				Transport: strings.ToUpper(req.Transport()), CallID: req.CallID().Value(),
				CSeq: req.CSeq().SeqNo, Expires: until, Customer: customer,
			})
		}
		var err error
		if bs, err = e.table.UpdateMax(aor, updates, e.cfg.MaxContacts); err != nil {
			e.logReject(zerolog.InfoLevel, req, src, "", "too_many_contacts", "registration refused")
			e.respond(tx, req, 403, reasonTooManyContacts, nil)
			return
		}
		if len(bs) == 0 {
			e.metrics.registers.WithLabelValues("unregistered").Inc()
		} else {
			e.metrics.registers.WithLabelValues("registered").Inc()
		}
	}
	e.respondRegistered(tx, req, bs, now)
}
