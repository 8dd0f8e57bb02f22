package verifier

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/verifier/auth"
	"github.com/trunkpass/trunkpass/verifier/registrar"
	"golang.org/x/time/rate"
)

func init() {
	// Browser INVITEs carry ~2-3 KB of SDP; sipgo refuses UDP messages over
	// its MTU setting, so relaying them to a UDP trunk needs more. It is a
	// process-wide variable that sipgo reads on every write: set it here,
	// before any UA runs, rather than in New while other UAs may be
	// writing.
	if sip.UDPMTUSize < 8192 {
		sip.UDPMTUSize = 8192
	}
}

// Edge is the SIP verifier edge. Make it with New, run it with
// ListenAndServe (or Listen then Serve), stop it with Close or by ending
// the context.
type Edge struct {
	cfg     Config
	log     zerolog.Logger
	now     func() time.Time
	reg     prometheus.Registerer
	http    *http.Client
	metrics *metrics

	parser *sip.Parser
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	cli    *sipgo.Client

	authn        auth.Chain
	digest       *auth.Digest
	jwks         *auth.JWKSource
	bearer       bool
	remoteAuth   bool // an authenticator asks a server per request (introspection)
	authenticate map[sip.RequestMethod]bool
	allowVisitor string // Allow header of answers to visitors' unauthenticated methods

	table      *registrar.Table
	upstream   *target
	routes     map[string]target
	routeNames []string // customers of routes, sorted: flow tokens name routes by index
	trunkAddrs map[netip.AddrPort]bool
	// trunkOwner maps a trunk address to the one customer whose route it
	// is ("" when it is the upstream's or several customers').
	trunkOwner   map[netip.AddrPort]string
	trunkSources []netip.Prefix

	flowKey []byte
	host    string

	bearerPlain string        // the Bearer challenge without error
	tagPrefix   string        // To tags of stateless answers: prefix + counter
	tagSeq      atomic.Uint64 // counter of those tags

	limitMu     sync.Mutex
	limiters    map[netip.Addr]*rate.Limiter // by limiterKey
	maxLimiters int

	// workers bounds the stateless UDP REGISTERs handled at once; idle
	// hands each to a worker goroutine waiting for one (see dispatch).
	workers chan struct{}
	idle    chan statelessJob
	quit    chan struct{} // closed by Close: idle workers exit

	mu        sync.Mutex
	listeners []listener
	bound     []boundListener
	ports     map[string]int // transport (UDP, TCP, …) → port
	udpAddr   *net.UDPAddr
	closed    bool
	cancel    context.CancelFunc
}

type boundListener struct {
	network string
	conn    net.PacketConn
	ln      net.Listener
	addr    string
}

// Option changes how New builds an Edge.
type Option func(*Edge) error

// WithLogger sets the zerolog logger (zerolog.Nop by default).
func WithLogger(l zerolog.Logger) Option {
	return func(e *Edge) error { e.log = l; return nil }
}

// WithRegistry sets the Prometheus registry of the edge's metrics (a
// fresh registry by default).
func WithRegistry(r prometheus.Registerer) Option {
	return func(e *Edge) error { e.reg = r; return nil }
}

// WithClock sets the clock used for tokens, nonces and bindings.
func WithClock(now func() time.Time) Option {
	return func(e *Edge) error { e.now = now; return nil }
}

// WithHTTPClient sets the client used for metadata, JWKS and
// introspection.
func WithHTTPClient(c *http.Client) Option {
	return func(e *Edge) error { e.http = c; return nil }
}

// New checks cfg and builds an edge; secrets must already be in cfg (see
// Config.LoadSecrets). It opens no socket.
func New(cfg Config, opts ...Option) (*Edge, error) {
	cfg.Authenticate = slices.Clone(cfg.Authenticate)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("edge config: %w", err)
	}
	e := &Edge{
		cfg:          cfg,
		log:          zerolog.Nop(),
		now:          time.Now,
		authenticate: map[sip.RequestMethod]bool{},
		routes:       map[string]target{},
		trunkAddrs:   map[netip.AddrPort]bool{},
		trunkOwner:   map[netip.AddrPort]string{},
		limiters:     map[netip.Addr]*rate.Limiter{},
		maxLimiters:  100_000,
		workers:      make(chan struct{}, maxStatelessWorkers),
		idle:         make(chan statelessJob),
		quit:         make(chan struct{}),
		ports:        map[string]int{},
		flowKey:      make([]byte, 32),
	}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	if e.reg == nil {
		e.reg = prometheus.NewRegistry()
	}
	if e.http == nil {
		e.http = &http.Client{Timeout: 5 * time.Second}
	}
	rand.Read(e.flowKey)
	e.table = registrar.New(e.now)
	m, err := newMetrics(e.reg, func() float64 { return float64(e.table.Len()) })
	if err != nil {
		return nil, fmt.Errorf("edge metrics: %w", err)
	}
	e.metrics = m
	allow := []string{"ACK", "CANCEL", "OPTIONS"}
	for _, meth := range cfg.Authenticate {
		e.authenticate[sip.RequestMethod(meth)] = true
		if !slices.Contains(allow, meth) {
			allow = append(allow, meth)
		}
	}
	e.allowVisitor = strings.Join(allow, ", ")
	for _, l := range cfg.Listen {
		pl, _ := parseListen(l)
		e.listeners = append(e.listeners, pl)
	}
	e.host = cfg.Host
	if e.host == "" {
		h, _, _ := net.SplitHostPort(e.listeners[0].addr)
		if h == "" || h == "0.0.0.0" || h == "::" {
			h = "127.0.0.1"
		}
		e.host = h
	}
	if cfg.Upstream != "" {
		t, _ := parseTarget(cfg.Upstream)
		e.upstream = &t
		e.addTrunkAddrs(t, "")
	}
	for cid, r := range cfg.Routes {
		t, _ := parseTarget(r)
		e.routes[cid] = t
		e.routeNames = append(e.routeNames, cid)
		e.addTrunkAddrs(t, cid)
	}
	slices.Sort(e.routeNames)
	for _, s := range cfg.TrunkSources {
		p, _ := netip.ParsePrefix(s)
		e.trunkSources = append(e.trunkSources, p)
	}
	if err := e.buildAuthenticators(); err != nil {
		return nil, err
	}
	if err := e.buildSIP(); err != nil {
		return nil, err
	}
	e.bearerPlain = e.bearerChallenge(false, "")
	var tag [6]byte
	rand.Read(tag[:])
	e.tagPrefix = hex.EncodeToString(tag[:]) + "."
	return e, nil
}

// addTrunkAddrs remembers the address of a trunk (the route of customer,
// or the upstream when customer is ""): requests from there reach
// registered visitors without credentials.
func (e *Edge) addTrunkAddrs(t target, customer string) {
	host, portStr, _ := net.SplitHostPort(t.hostport)
	var port uint16
	fmt.Sscan(portStr, &port)
	add := func(ap netip.AddrPort) {
		owner := customer
		if prev, seen := e.trunkOwner[ap]; seen && prev != customer {
			owner = ""
		}
		e.trunkAddrs[ap] = true
		e.trunkOwner[ap] = owner
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		add(netip.AddrPortFrom(ip.Unmap(), port))
		return
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		e.log.Warn().Str("host", host).Err(err).Msg("cannot resolve trunk host")
		return
	}
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			add(netip.AddrPortFrom(a.Unmap(), port))
		}
	}
}

// trunkCustomer is the customer whose route src is, or "" when src is not
// the route of exactly one customer.
func (e *Edge) trunkCustomer(src netip.AddrPort) string { return e.trunkOwner[src] }

// isTrunk reports whether src is one of the trunks: the address of the
// upstream or a route, or inside trunk_sources.
func (e *Edge) isTrunk(src netip.AddrPort) bool {
	if e.trunkAddrs[src] {
		return true
	}
	for _, p := range e.trunkSources {
		if p.Contains(src.Addr()) {
			return true
		}
	}
	return false
}

func (e *Edge) buildAuthenticators() error {
	cfg := &e.cfg
	cacheSize := cfg.TokenCache
	methods := slices.Clone(cfg.Authenticate)
	hasHS := len(cfg.HSProfiles.Profiles) > 0
	if hasHS {
		profiles := map[string]*auth.Profile{}
		for _, p := range cfg.HSProfiles.Profiles {
			if p.Tag == "" {
				return errors.New("edge config: hs_profiles: a profile without tag")
			}
			prof := &auth.Profile{Tag: p.Tag, Headers: p.Headers, Domain: p.Domain}
			if len(p.Methods) > 0 {
				prof.Grant = &chain.SIPGrant{Methods: p.Methods}
			}
			for _, s := range p.Secrets {
				if len(s.Secret) == 0 {
					return fmt.Errorf("edge config: hs profile %s secret %s: not loaded", p.Tag, s.ID)
				}
				prof.Secrets = append(prof.Secrets, chain.Secret{ID: s.ID, Customer: p.Tag, Value: s.Secret, NotBefore: s.NotBefore, NotAfter: s.NotAfter})
			}
			if prof.Grant != nil {
				if err := prof.Grant.Validate(); err != nil {
					return fmt.Errorf("edge config: hs profile %s: %w", p.Tag, err)
				}
			}
			profiles[p.Tag] = prof
		}
		e.authn = append(e.authn, &auth.HSProfiles{
			TagClaim: cfg.HSProfiles.TagClaim, Profiles: profiles, Audience: cfg.Audience,
			MaxAge: cfg.MaxTokenAge, Leeway: cfg.Leeway, DefaultMethods: methods,
			Cache: auth.NewTokenCache(cacheSize, e.now), Now: e.now,
		})
		e.bearer = true
	}
	if cfg.Issuer != "" {
		e.jwks = auth.NewJWKSource(cfg.Issuer, cfg.JWKSURL, e.http, time.Second)
		e.jwks.OnFetch = func(err error) {
			if err != nil {
				e.metrics.jwksFetches.WithLabelValues("error").Inc()
				e.log.Warn().Err(err).Msg("jwks fetch failed; cached keys stay in use")
				return
			}
			e.metrics.jwksFetches.WithLabelValues("ok").Inc()
			e.log.Info().Int("keys", e.jwks.Len()).Msg("jwks fetched")
		}
		e.authn = append(e.authn, &auth.BearerJWT{
			Verifier: &chain.EdgeVerifier{Keys: e.jwks, Issuer: cfg.Issuer, Audience: cfg.Audience, MaxAge: cfg.MaxTokenAge, Leeway: cfg.Leeway, Now: e.now},
			Cache:    auth.NewTokenCache(cacheSize, e.now),
			SkipHMAC: hasHS,
			// With introspection too, tokens not of this issuer go there:
			// opaque ones, JWTs of another iss or of an unknown kid.
			SkipOpaque:  cfg.Introspection.URL != "",
			PassUnknown: cfg.Introspection.URL != "",
		})
		e.bearer = true
	}
	if cfg.Introspection.URL != "" {
		e.authn = append(e.authn, &auth.Introspection{
			URL: cfg.Introspection.URL, ClientID: cfg.Introspection.ClientID, ClientSecret: cfg.Introspection.ClientSecret,
			Audience: cfg.Audience, Issuer: cfg.Issuer, MaxAge: cfg.MaxTokenAge, Leeway: cfg.Leeway, DefaultMethods: methods,
			Client: e.http, Cache: auth.NewTokenCache(cacheSize, e.now), Now: e.now,
		})
		e.bearer = true
		e.remoteAuth = true
	}
	if len(cfg.Ephemeral.Secrets) > 0 {
		h, _ := chain.ParseHash(cfg.Ephemeral.Hash)
		d, err := auth.NewDigest(cfg.Realm, &chain.EphemeralVerifier{
			Format: chain.EphemeralFormat{Hash: h}, Secrets: cfg.Ephemeral.Secrets,
			MaxLifetime: cfg.Ephemeral.MaxLifetime, Now: e.now,
		}, 0)
		if err != nil {
			return fmt.Errorf("edge config: %w", err)
		}
		e.digest = d
		e.authn = append(e.authn, d)
	}
	return nil
}

func (e *Edge) buildSIP() error {
	if e.cfg.UDPLinger > 0 {
		sip.Timer_J = e.cfg.UDPLinger
	}
	slogger := newSlogLogger(e.log)
	e.parser = sip.NewParser()
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("trunkpass-edge"),
		sipgo.WithUserAgentHostname(e.host),
		sipgo.WithUserAgentParser(e.parser),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger), sip.WithTransportLayerReadFilter(e.readFilter)),
	)
	if err != nil {
		return fmt.Errorf("sip user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		return fmt.Errorf("sip server: %w", err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(e.host), sipgo.WithClientLogger(slogger))
	if err != nil {
		return fmt.Errorf("sip client: %w", err)
	}
	e.ua, e.srv, e.cli = ua, srv, cli
	for _, m := range []sip.RequestMethod{sip.REGISTER, sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.OPTIONS,
		sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER, sip.INFO, sip.UPDATE, sip.PRACK, sip.PUBLISH} {
		srv.OnRequest(m, e.handle)
	}
	srv.OnNoRoute(e.handle)
	return nil
}

// Listen opens every configured listener. Addrs then reports the bound
// addresses (useful with port 0).
func (e *Edge) Listen() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("edge closed")
	}
	if len(e.bound) > 0 {
		return nil
	}
	var tlsConf *tls.Config
	for _, l := range e.listeners {
		var b boundListener
		var err error
		b.network = l.network
		switch l.network {
		case "udp":
			var c *net.UDPConn
			var ua *net.UDPAddr
			if ua, err = net.ResolveUDPAddr("udp", l.addr); err == nil {
				if c, err = net.ListenUDP("udp", ua); err == nil {
					// Bursts of thousands of REGISTERs a second overflow the
					// default socket buffer (~200 KB); the kernel caps this
					// at net.core.rmem_max.
					c.SetReadBuffer(4 << 20)
					c.SetWriteBuffer(4 << 20)
					b.conn, b.addr = c, c.LocalAddr().String()
					e.udpAddr = c.LocalAddr().(*net.UDPAddr)
				}
			}
		case "tcp", "ws":
			if b.ln, err = net.Listen("tcp", l.addr); err == nil {
				b.addr = b.ln.Addr().String()
			}
		case "tls", "wss":
			if tlsConf == nil {
				if tlsConf, err = e.tlsConfig(); err != nil {
					break
				}
			}
			if b.ln, err = tls.Listen("tcp", l.addr, tlsConf); err == nil {
				b.addr = b.ln.Addr().String()
			}
		}
		if err != nil {
			e.closeListenersLocked()
			return fmt.Errorf("listen %s://%s: %w", l.network, l.addr, err)
		}
		_, port, _ := net.SplitHostPort(b.addr)
		var p int
		fmt.Sscan(port, &p)
		if _, ok := e.ports[strings.ToUpper(l.network)]; !ok {
			e.ports[strings.ToUpper(l.network)] = p
		}
		e.bound = append(e.bound, b)
	}
	return nil
}

func (e *Edge) tlsConfig() (*tls.Config, error) {
	if e.cfg.TLS.CertFile == "" || e.cfg.TLS.KeyFile == "" {
		return nil, errors.New("tls.cert_file and tls.key_file are required for tls:// and wss://")
	}
	cert, err := tls.LoadX509KeyPair(e.cfg.TLS.CertFile, e.cfg.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Addrs returns the bound address of each listener, as "network://addr".
func (e *Edge) Addrs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.bound))
	for _, b := range e.bound {
		out = append(out, b.network+"://"+b.addr)
	}
	return out
}

// Addr returns the bound address of the first listener of network (udp,
// tcp, tls, ws, wss), or "".
func (e *Edge) Addr(network string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.bound {
		if b.network == network {
			return b.addr
		}
	}
	return ""
}

// ListenAndServe opens the listeners and serves until ctx is done or
// Close is called.
func (e *Edge) ListenAndServe(ctx context.Context) error {
	if err := e.Listen(); err != nil {
		return err
	}
	return e.Serve(ctx)
}

// Serve serves SIP on the listeners opened by Listen (it calls Listen if
// needed) until ctx is done or Close is called. It also fetches the JWKS
// once at start (failure is logged, not fatal: keys are fetched on first
// use) and sweeps expired bindings and closed WebSocket flows.
func (e *Edge) Serve(ctx context.Context) error {
	if err := e.Listen(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.cancel = cancel
	bound := slices.Clone(e.bound)
	e.mu.Unlock()
	defer cancel()
	if e.jwks != nil {
		go func() {
			fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
			defer fcancel()
			e.jwks.Refresh(fctx)
		}()
	}
	go e.sweeper(ctx)
	errc := make(chan error, len(bound))
	for _, b := range bound {
		e.log.Info().Str("listen", b.network+"://"+b.addr).Msg("edge listening")
		go func() {
			var err error
			switch b.network {
			case "udp":
				err = e.srv.ServeUDP(b.conn)
			case "tcp":
				err = e.srv.ServeTCP(b.ln)
			case "ws":
				err = e.srv.ServeWS(b.ln)
			case "tls":
				err = e.srv.ServeTLS(b.ln)
			case "wss":
				err = e.srv.ServeWSS(b.ln)
			}
			errc <- err
		}()
	}
	select {
	case <-ctx.Done():
		e.Close()
		return nil
	case err := <-errc:
		e.Close()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("edge listener: %w", err)
	}
}

// Close stops the listeners and the SIP stack. It is safe to call more
// than once.
func (e *Edge) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.quit)
	if e.cancel != nil {
		e.cancel()
	}
	e.closeListenersLocked()
	e.mu.Unlock()
	return e.ua.Close()
}

func (e *Edge) closeListenersLocked() {
	for _, b := range e.bound {
		if b.conn != nil {
			b.conn.Close()
		}
		if b.ln != nil {
			b.ln.Close()
		}
	}
}

// Registrations is the number of bindings in the location table.
func (e *Edge) Registrations() int { return e.table.Len() }

// sweeper removes expired bindings, bindings whose connection closed, and
// idle rate limiters.
func (e *Edge) sweeper(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.table.Sweep(e.connectionGone)
		e.limitMu.Lock()
		for ip, l := range e.limiters {
			if l.Tokens() >= float64(l.Burst()) {
				delete(e.limiters, ip)
			}
		}
		e.limitMu.Unlock()
	}
}

// connectionGone reports whether the connection a binding came over has
// closed.
func (e *Edge) connectionGone(b registrar.Binding) bool {
	pool := e.ua.TransportLayer().Pool(b.Transport)
	if pool == nil {
		return false
	}
	c := pool.Get(b.Source.String())
	if c == nil {
		return true
	}
	c.Ref(-1)
	return false
}
