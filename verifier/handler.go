package verifier

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/verifier/auth"
	"golang.org/x/time/rate"
)

// Reason phrases of answers that are not grant failures.
const (
	reasonRateLimited     = "Forbidden: too many failed authentications"
	reasonNotInDialog     = "Forbidden: not in a dialog of this edge"
	reasonTooManyContacts = "Forbidden: too many contacts"
)

// Handler returns the edge's request handler, to register with another
// sipgo server (the edge registers it on its own for every method).
func (e *Edge) Handler() func(req *sip.Request, tx sip.ServerTransaction) { return e.handle }

func (e *Edge) handle(req *sip.Request, tx sip.ServerTransaction) {
	e.metrics.requests.WithLabelValues(methodLabel(req.Method)).Inc()
	src, _ := netip.ParseAddrPort(req.Source())
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
		e.respond(tx, req, 400, "Bad Request", nil)
		return
	}
	switch {
	case req.Method == sip.ACK:
		e.inDialog(req, tx, src)
		return
	case req.Method == sip.CANCEL:
		// sipgo answers a CANCEL that matches an INVITE transaction itself.
		e.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	case req.To().Params.Has("tag"):
		e.inDialog(req, tx, src)
		return
	case req.Method == sip.OPTIONS && (req.Recipient.User == "" || e.isOurs(&req.Recipient)):
		e.respond(tx, req, 200, "OK", func(res *sip.Response) {
			res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, NOTIFY, INFO, UPDATE, REFER, PRACK"))
		})
		return
	case e.isTrunk(src) && (!e.authenticate[req.Method] || !hasCredentials(req)):
		e.fromTrunk(req, tx, src)
		return
	case !e.authenticate[req.Method]:
		// Nothing reaches the trunk from a visitor without credentials: a
		// method that is not authenticated is answered here.
		if req.Method == sip.OPTIONS {
			e.respond(tx, req, 200, "OK", func(res *sip.Response) {
				res.AppendHeader(sip.NewHeader("Allow", e.allowVisitor))
			})
			return
		}
		e.respond(tx, req, 405, "Method Not Allowed", func(res *sip.Response) {
			res.AppendHeader(sip.NewHeader("Allow", e.allowVisitor))
		})
		return
	}
	e.removeOurRoutes(req)
	if e.limited(src.Addr()) {
		e.metrics.limited.Inc()
		e.respond(tx, req, 403, reasonRateLimited, nil)
		return
	}
	id, err := e.authenticateRequest(req, src)
	if err != nil {
		e.challenge(req, tx, src, err)
		return
	}
	if err := Authorize(req, id, src); err != nil {
		e.forbid(req, tx, src, id, err)
		return
	}
	e.metrics.auth.WithLabelValues(id.Authenticator, "ok", "").Inc()
	if req.Method == sip.REGISTER {
		e.register(req, tx, id, src)
		return
	}
	e.toTrunk(req, tx, id, src)
}

// authenticateRequest runs the authenticators, with a deadline when one
// of them may ask a server (introspection; JWKS fetches have their own).
func (e *Edge) authenticateRequest(req *sip.Request, src netip.AddrPort) (*auth.Identity, error) {
	if !e.remoteAuth {
		return e.authn.Authenticate(context.Background(), req, src)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.authn.Authenticate(ctx, req, src)
}

func hasCredentials(req *sip.Request) bool {
	_, _, ok := auth.Credentials(req)
	return ok
}

func methodLabel(m sip.RequestMethod) string {
	switch m {
	case sip.REGISTER, sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.OPTIONS, sip.MESSAGE, sip.SUBSCRIBE,
		sip.NOTIFY, sip.REFER, sip.INFO, sip.UPDATE, sip.PRACK, sip.PUBLISH:
		return string(m)
	}
	return "other"
}

// respond answers req with a new response, after mod changes it.
func (e *Edge) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, mod func(*sip.Response)) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if mod != nil {
		mod(res)
	}
	if err := tx.Respond(res); err != nil {
		e.log.Debug().Err(err).Int("status", code).Msg("respond")
	}
}

// limiterKey is the rate-limiting key of ip: the address for IPv4, its
// /64 for IPv6 (one host holds a whole /64).
func limiterKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is4() {
		return ip
	}
	p, _ := ip.Prefix(64)
	return p.Addr()
}

// limited reports whether ip has failed authentication too often.
func (e *Edge) limited(ip netip.Addr) bool {
	if e.cfg.RateLimit.FailuresPerSecond <= 0 {
		return false
	}
	e.limitMu.Lock()
	defer e.limitMu.Unlock()
	l, ok := e.limiters[limiterKey(ip)]
	return ok && l.Tokens() < 1
}

// failed counts a failed authentication from ip.
func (e *Edge) failed(ip netip.Addr) {
	if e.cfg.RateLimit.FailuresPerSecond <= 0 {
		return
	}
	key := limiterKey(ip)
	e.limitMu.Lock()
	defer e.limitMu.Unlock()
	l, ok := e.limiters[key]
	if !ok {
		if len(e.limiters) >= e.maxLimiters {
			e.evictLimitersLocked()
		}
		burst := max(e.cfg.RateLimit.Burst, 1)
		l = rate.NewLimiter(rate.Limit(e.cfg.RateLimit.FailuresPerSecond), burst)
		e.limiters[key] = l
	}
	l.Allow()
}

// evictLimitersLocked makes room in a full limiter table: it drops idle
// limiters (full bucket) among a random sample, or one random limiter
// when the sample has none, so the table stays bounded without forgetting
// every limited source at once.
func (e *Edge) evictLimitersLocked() {
	seen, dropped := 0, 0
	var victim netip.Addr
	for k, l := range e.limiters { // map order is random: this samples
		if l.Tokens() >= float64(l.Burst()) {
			delete(e.limiters, k)
			dropped++
		}
		victim = k
		if seen++; seen >= 64 {
			break
		}
	}
	if dropped == 0 {
		delete(e.limiters, victim)
	}
}

// reason names an authentication error for metrics and logs.
func reason(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{auth.ErrNoCredentials, "no_credentials"},
		{auth.ErrStaleNonce, "stale_nonce"},
		{auth.ErrUnavailable, "unavailable"},
		{chain.ErrExpired, "expired"},
		{chain.ErrNotYetValid, "not_yet_valid"},
		{chain.ErrLifetime, "lifetime"},
		{chain.ErrAlgorithm, "algorithm"},
		{chain.ErrUnknownKey, "unknown_key"},
		{chain.ErrBadSignature, "bad_signature"},
		{chain.ErrAudience, "audience"},
		{chain.ErrIssuer, "issuer"},
		{chain.ErrMissingClaim, "missing_claim"},
		{chain.ErrTooLarge, "too_large"},
		{auth.ErrNonce, "bad_nonce"},
		{auth.ErrURIMismatch, "uri_mismatch"},
		{chain.ErrMalformed, "malformed"},
		{ErrAORMismatch, "aor_mismatch"},
		{ErrMethod, "method"},
		{ErrDestination, "destination"},
		{ErrSource, "source"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "other"
}

// challenge answers a request whose credentials are missing or invalid.
func (e *Edge) challenge(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, err error) {
	scheme, _, presented := auth.Credentials(req)
	name := "none"
	switch {
	case scheme == auth.SchemeDigest:
		name = auth.NameDigest
	case presented:
		name = auth.NameBearer
	}
	rsn := reason(err)
	result := "challenge"
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		result = "unavailable"
	case errors.Is(err, auth.ErrStaleNonce):
		result = "stale"
	case errors.Is(err, auth.ErrInvalidCredentials):
		result = "invalid"
	case presented:
		// Credentials of a kind no authenticator is configured for.
		result, err = "invalid", auth.ErrInvalidCredentials
	}
	e.metrics.auth.WithLabelValues(name, result, rsn).Inc()
	if result == "unavailable" {
		e.log.Warn().Err(err).Msg("authentication server unavailable")
		e.respond(tx, req, 503, "Service Unavailable", func(res *sip.Response) {
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
		})
		return
	}
	if result == "invalid" {
		e.failed(src.Addr())
		e.logReject(zerolog.InfoLevel, req, src, name, rsn, "authentication failed")
	}
	code, reasonPhrase, header := 407, "Proxy Authentication Required", "Proxy-Authenticate"
	if req.Method == sip.REGISTER {
		code, reasonPhrase, header = 401, "Unauthorized", "WWW-Authenticate"
	}
	e.respond(tx, req, code, reasonPhrase, func(res *sip.Response) {
		e.addChallenges(res, header, result == "stale", result == "invalid" && scheme == auth.SchemeBearer)
	})
}

// addChallenges adds the Digest challenges (when Digest is enabled) and the
// Bearer challenge (when a Bearer authenticator is) to res.
//
// SIPp and RFC 7616 clients answer the first challenge they support, while
// JsSIP keeps only the last challenge header of a response (its parser
// replaces rather than appends) and answers MD5 only: so the MD5 challenge
// stands first and, when other challenges follow it, last as well.
func (e *Edge) addChallenges(res *sip.Response, header string, stale, invalidToken bool) {
	e.challenges(stale, invalidToken, func(c string) { res.AppendHeader(sip.NewHeader(header, c)) })
}

// writeChallenges writes the header lines of addChallenges (no stale
// nonce, no invalid token) to buf.
func (e *Edge) writeChallenges(buf *bytes.Buffer, header string) {
	e.challenges(false, false, func(c string) {
		buf.WriteString(header)
		buf.WriteString(": ")
		buf.WriteString(c)
		buf.WriteString("\r\n")
	})
}

// challenges calls add with each challenge, in the order addChallenges
// documents.
func (e *Edge) challenges(stale, invalidToken bool, add func(string)) {
	var digest []string
	if e.digest != nil {
		digest = e.digest.Challenges(stale)
	}
	for _, c := range digest {
		add(c)
	}
	if e.bearer {
		if invalidToken {
			add(e.bearerChallenge(true, ""))
		} else {
			add(e.bearerPlain)
		}
	}
	if len(digest) > 0 && (e.bearer || len(digest) > 1) {
		add(digest[0])
	}
}

// bearerChallenge is an RFC 8898 Bearer challenge.
func (e *Edge) bearerChallenge(invalid bool, scopeError string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(e.cfg.Realm)
	b.WriteString(`"`)
	if e.cfg.Issuer != "" {
		b.WriteString(`, authz_server="`)
		b.WriteString(e.cfg.Issuer)
		b.WriteString(`"`)
	}
	switch {
	case invalid:
		b.WriteString(`, error="invalid_token"`)
	case scopeError != "":
		b.WriteString(`, error="`)
		b.WriteString(scopeError)
		b.WriteString(`"`)
	}
	return b.String()
}

// forbid answers 403 for a grant check that failed.
func (e *Edge) forbid(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, id *auth.Identity, err error) {
	rsn := reason(err)
	e.metrics.auth.WithLabelValues(id.Authenticator, "forbidden", rsn).Inc()
	e.logReject(zerolog.InfoLevel, req, src, id.Authenticator, rsn, "request outside the grant")
	e.respond(tx, req, 403, err.Error(), func(res *sip.Response) {
		if e.bearer && id.Authenticator != auth.NameDigest {
			header := "Proxy-Authenticate"
			if req.Method == sip.REGISTER {
				header = "WWW-Authenticate"
			}
			res.AppendHeader(sip.NewHeader(header, e.bearerChallenge(false, "insufficient_scope")))
		}
	})
}

// logReject logs a refused request without its credentials.
func (e *Edge) logReject(level zerolog.Level, req *sip.Request, src netip.AddrPort, authenticator, rsn, msg string) {
	ev := e.log.WithLevel(level)
	if !ev.Enabled() {
		return
	}
	ev.Str("method", string(req.Method)).Str("src", src.String()).Str("call_id", req.CallID().Value()).
		Str("authenticator", authenticator).Str("reason", rsn).Msg(msg)
}
