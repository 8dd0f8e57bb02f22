package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/trunkpass/trunkpass/chain"
	customersite "github.com/trunkpass/trunkpass/examples/customer-site"
	"github.com/trunkpass/trunkpass/internal/config"
	"github.com/trunkpass/trunkpass/internal/echotrunk"
	"github.com/trunkpass/trunkpass/internal/logging"
	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/verifier"
)

func init() { rootCmd.AddCommand(newDemoCmd()) }

// Demo provisioning (SPEC §5).
const (
	demoCustomer = "demo"
	demoDomain   = "demo.trunk.example.net"
	demoRealm    = "trunk.example.net"
	demoAudience = "sip:trunk.example.net"
	demoEchoURI  = "sip:echo@trunk.example.net"
	// demoFile is written in the data directory.
	demoFile = "demo.json"
	// ephemeralFile keeps the Digest secret shared by issuer and edge.
	ephemeralFile = "ephemeral.secret"
	// demoUDPMTU lets the edge forward a browser INVITE (~2.3 KB of SDP)
	// over UDP: sipgo refuses UDP messages above UDPMTUSize-200 bytes
	// (1500 by default). Everything in the demo runs on loopback, whose
	// MTU is 64 KB; the upstream trunk is reached over TCP anyway.
	demoUDPMTU = 8192
)

// demoMethods is the demo customer's default grant: what a visitor may send.
var demoMethods = []string{"REGISTER", "INVITE", "MESSAGE", "BYE", "CANCEL", "ACK", "OPTIONS", "UPDATE", "INFO"}

// demoOptions are the flags of `trunkpass demo`.
type demoOptions struct {
	host        string
	issuerPort  int
	sitePort    int
	sipPort     int
	wsPort      int
	trunkPort   int
	data        string
	jssip       string
	logLevel    string
	answerDelay time.Duration
	tokenTTL    time.Duration
}

// DemoInfo is demo.json: everything needed to use the running demo.
type DemoInfo struct {
	IssuerURL  string   `json:"issuer_url"`
	SiteURL    string   `json:"site_url"`
	LegacyURL  string   `json:"legacy_url"`
	Edge       DemoEdge `json:"edge"`
	Trunk      string   `json:"trunk"`
	AdminToken string   `json:"admin_token"`
	Customer   string   `json:"customer"`
	SecretID   string   `json:"secret_id"`
	Secret     string   `json:"secret"`
	Domain     string   `json:"domain"`
	Realm      string   `json:"realm"`
	EchoURI    string   `json:"echo_uri"`
	Data       string   `json:"data"`
}

// DemoEdge lists the edge's listeners.
type DemoEdge struct {
	UDP string `json:"udp"`
	TCP string `json:"tcp"`
	WS  string `json:"ws"`
}

func newDemoCmd() *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run issuer, edge, example customer site and echo trunk in one process",
		Long: `Run the whole chain on this machine: the issuer (HTTP), the SIP edge (UDP,
TCP and WebSocket), the example customer website and a test trunk that
echoes audio. The demo customer "demo" is provisioned with a secret; every
URL and the secret are printed and written to demo.json in the data
directory. Open the site URL in a browser, log in, and call the echo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := logging.New(cmd.ErrOrStderr(), o.logLevel, false)
			d, err := startDemo(ctx, o, log)
			if err != nil {
				return err
			}
			defer d.Close()
			d.print(cmd.OutOrStdout())
			return d.Wait(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "127.0.0.1", "IP address every part listens on (and the echo's media candidate when not loopback)")
	f.IntVar(&o.issuerPort, "issuer-port", 8080, "issuer HTTP port")
	f.IntVar(&o.sitePort, "site-port", 8081, "example customer site HTTP port")
	f.IntVar(&o.sipPort, "sip-port", 5060, "edge SIP port (UDP and TCP)")
	f.IntVar(&o.wsPort, "ws-port", 8088, "edge SIP over WebSocket port")
	f.IntVar(&o.trunkPort, "trunk-port", 5070, "echo trunk SIP port (UDP and TCP)")
	f.StringVar(&o.data, "data", "", "data directory (default: a fresh temporary directory)")
	f.StringVar(&o.jssip, "jssip", customersite.DefaultJSSIPPath, "JsSIP bundle built by `npm run build:jssip`")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.DurationVar(&o.answerDelay, "answer-delay", time.Second, "how long the echo trunk rings before answering")
	f.DurationVar(&o.tokenTTL, "token-ttl", issuer.DefaultConfig().TokenTTL, "edge token lifetime (short values show the page refreshing its token)")
	return cmd
}

// demo is a running demo.
type demo struct {
	info   DemoInfo
	log    zerolog.Logger
	iss    *issuer.Issuer
	edge   *verifier.Edge
	trunk  *echotrunk.Trunk
	https  []*http.Server
	cancel context.CancelFunc
	errc   chan error
	closed chan struct{}
}

// startDemo opens every socket, provisions the demo customer, starts
// serving and writes demo.json. Ports may be 0 (tests).
func startDemo(parent context.Context, o demoOptions, log zerolog.Logger) (_ *demo, err error) {
	sip.UDPMTUSize = max(sip.UDPMTUSize, demoUDPMTU)
	if o.data == "" {
		if o.data, err = os.MkdirTemp("", "trunkpass-demo-"); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	} else if err := os.MkdirAll(o.data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	ctx, cancel := context.WithCancel(parent)
	d := &demo{log: log, cancel: cancel, errc: make(chan error, 8), closed: make(chan struct{})}
	var closers []io.Closer
	defer func() {
		if err != nil {
			cancel()
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i].Close()
			}
		}
	}()
	listen := func(port int) (net.Listener, error) {
		l, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(port)))
		if err == nil {
			closers = append(closers, l)
		}
		return l, err
	}

	// Sockets first, so that ports chosen by the system (0) are known
	// before anything is configured with them.
	issuerLn, err := listen(o.issuerPort)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	siteLn, err := listen(o.sitePort)
	if err != nil {
		return nil, fmt.Errorf("customer site: %w", err)
	}
	trunkTCP, err := listen(o.trunkPort)
	if err != nil {
		return nil, fmt.Errorf("echo trunk: %w", err)
	}
	trunkUDP, err := net.ListenPacket("udp", trunkTCP.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("echo trunk: %w", err)
	}
	closers = append(closers, trunkUDP)
	issuerURL := "http://" + issuerLn.Addr().String()
	siteURL := "http://" + siteLn.Addr().String()
	trunkAddr := trunkTCP.Addr().String()

	ephemeral, err := readOrCreateSecret(filepath.Join(o.data, ephemeralFile))
	if err != nil {
		return nil, err
	}

	// The edge: Bearer tokens from the issuer's JWKS, Digest with the
	// shared ephemeral secret, calls proxied to the echo trunk over TCP.
	ecfg := verifier.DefaultConfig()
	ecfg.Listen = []string{
		"udp://" + net.JoinHostPort(o.host, strconv.Itoa(o.sipPort)),
		"tcp://" + net.JoinHostPort(o.host, strconv.Itoa(o.sipPort)),
		"ws://" + net.JoinHostPort(o.host, strconv.Itoa(o.wsPort)),
	}
	ecfg.Realm = demoRealm
	ecfg.Audience = demoAudience
	ecfg.Issuer = issuerURL
	ecfg.Upstream = "sip:" + trunkAddr + ";transport=tcp"
	ecfg.Ephemeral.Secrets = [][]byte{ephemeral}
	ecfg.LogLevel = o.logLevel
	edge, err := verifier.New(ecfg, verifier.WithLogger(log.With().Str("service", "edge").Logger()))
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	closers = append(closers, edge)
	if err := edge.Listen(); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	d.edge = edge
	wsURL := "ws://" + edge.Addr("ws")

	// The issuer, with its store and keys in the data directory.
	icfg := issuer.DefaultConfig()
	icfg.Listen = issuerLn.Addr().String()
	icfg.URL = issuerURL
	icfg.Data = o.data
	icfg.Edge = issuer.EdgeConfig{Audience: demoAudience, Realm: demoRealm, Websocket: []string{wsURL}}
	icfg.EphemeralSecret = ephemeral
	if o.tokenTTL > 0 {
		icfg.TokenTTL = o.tokenTTL
	}
	created, err := icfg.GenerateSecrets()
	if err != nil {
		return nil, fmt.Errorf("issuer secrets: %w", err)
	}
	for _, p := range created {
		log.Info().Str("file", p).Msg("generated")
	}
	iss, err := issuer.New(icfg, issuer.WithLogger(log.With().Str("service", "issuer").Logger()))
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	closers = append(closers, iss)
	d.iss = iss

	origins := []string{siteURL}
	if _, port, _ := net.SplitHostPort(siteLn.Addr().String()); o.host == "127.0.0.1" {
		origins = append(origins, "http://localhost:"+port)
	}
	secretID, secret, err := provisionDemo(issuer.WithActor(ctx, "demo"), iss, o.data, origins)
	if err != nil {
		return nil, err
	}

	site, err := customersite.New(customersite.Options{
		CustomerID: demoCustomer,
		SecretID:   secretID,
		Secret:     []byte(secret),
		IssuerURL:  issuerURL,
		EchoURI:    demoEchoURI,
		JSSIPPath:  o.jssip,
		Logger:     logging.Slog(log.With().Str("service", "site").Logger()),
	})
	if err != nil {
		return nil, fmt.Errorf("customer site: %w", err)
	}
	// Media stays on loopback unless the demo listens on a specific
	// address, which then carries the echo's ICE candidate too.
	var iceAddrs []string
	if ip := net.ParseIP(o.host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		iceAddrs = []string{o.host}
	}
	trunk, err := echotrunk.New(echotrunk.Options{
		ICEAddrs:    iceAddrs,
		AnswerDelay: o.answerDelay,
		Logger:      logging.Slog(log.With().Str("service", "trunk").Logger()),
	})
	if err != nil {
		return nil, fmt.Errorf("echo trunk: %w", err)
	}
	closers = append(closers, trunk)
	d.trunk = trunk

	d.info = DemoInfo{
		IssuerURL:  issuerURL,
		SiteURL:    siteURL + "/",
		LegacyURL:  siteURL + "/legacy",
		Edge:       DemoEdge{UDP: edge.Addr("udp"), TCP: edge.Addr("tcp"), WS: wsURL},
		Trunk:      trunkAddr,
		AdminToken: string(icfg.AdminToken),
		Customer:   demoCustomer,
		SecretID:   secretID,
		Secret:     secret,
		Domain:     demoDomain,
		Realm:      demoRealm,
		EchoURI:    demoEchoURI,
		Data:       o.data,
	}
	if err := writeDemoInfo(filepath.Join(o.data, demoFile), d.info); err != nil {
		return nil, err
	}

	// Serve everything.
	serveHTTP := func(name string, l net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		d.https = append(d.https, srv)
		go func() {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				d.errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	serveHTTP("issuer", issuerLn, iss.Handler())
	serveHTTP("customer site", siteLn, site)
	go func() {
		if err := trunk.ServeTCP(trunkTCP); err != nil && ctx.Err() == nil {
			d.errc <- fmt.Errorf("echo trunk tcp: %w", err)
		}
	}()
	go func() {
		if err := trunk.ServeUDP(trunkUDP); err != nil && ctx.Err() == nil {
			d.errc <- fmt.Errorf("echo trunk udp: %w", err)
		}
	}()
	go func() {
		if err := edge.Serve(ctx); err != nil {
			d.errc <- fmt.Errorf("edge: %w", err)
		}
	}()
	closers = nil // d.Close owns them now
	trunkTCPClose, trunkUDPClose := trunkTCP, trunkUDP
	go func() {
		<-d.closed
		trunkTCPClose.Close()
		trunkUDPClose.Close()
	}()
	return d, nil
}

// provisionDemo creates the demo customer (or updates its origins) and
// returns a secret: the one recorded in demo.json when the issuer still
// has it, else a new one.
func provisionDemo(ctx context.Context, iss *issuer.Issuer, data string, origins []string) (id, secret string, err error) {
	if _, err := iss.Customer(demoCustomer); errors.Is(err, issuer.ErrNotFound) {
		_, err := iss.CreateCustomer(ctx, issuer.Customer{
			ID:      demoCustomer,
			Name:    "Demo customer",
			Domain:  demoDomain,
			Origins: origins,
			SIP: chain.SIPGrant{
				Methods: demoMethods,
				Dial:    &chain.DialRules{Allow: []string{demoEchoURI}}, // dial rules take wildcards in the user part only
			},
		})
		if err != nil {
			return "", "", fmt.Errorf("provision customer %q: %w", demoCustomer, err)
		}
	} else if err != nil {
		return "", "", fmt.Errorf("customer %q: %w", demoCustomer, err)
	} else if _, err := iss.UpdateCustomer(ctx, demoCustomer, issuer.CustomerPatch{Origins: &origins}); err != nil {
		return "", "", fmt.Errorf("update customer %q origins: %w", demoCustomer, err)
	}
	if prev, err := readDemoInfo(filepath.Join(data, demoFile)); err == nil && prev.SecretID != "" {
		infos, err := iss.Secrets(demoCustomer)
		if err != nil {
			return "", "", fmt.Errorf("secrets of %q: %w", demoCustomer, err)
		}
		for _, s := range infos {
			if s.ID == prev.SecretID && !s.Revoked && (s.NotAfter == nil || s.NotAfter.After(time.Now())) {
				return prev.SecretID, prev.Secret, nil
			}
		}
	}
	ns, err := iss.CreateSecret(ctx, demoCustomer, time.Time{}, time.Time{})
	if err != nil {
		return "", "", fmt.Errorf("create secret of %q: %w", demoCustomer, err)
	}
	return ns.ID, ns.Secret, nil
}

// readOrCreateSecret returns the secret kept in path, creating a random one
// (mode 0600) the first time.
func readOrCreateSecret(path string) ([]byte, error) {
	b, err := config.Secret("", path)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	v := []byte(base64.RawURLEncoding.EncodeToString(raw))
	if err := os.WriteFile(path, append(v, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

func writeDemoInfo(path string, info DemoInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", demoFile, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readDemoInfo(path string) (DemoInfo, error) {
	var info DemoInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// print shows a person what runs where. The demo secret and admin token
// are printed on purpose: they exist to be tried out.
func (d *demo) print(w io.Writer) {
	i := d.info
	fmt.Fprintf(w, `
trunkpass demo is running.

  Customer site (JWT flow)     %s
  Customer site (legacy flow)  %s
  Issuer                       %s   (JWKS: %s/.well-known/jwks.json)
  Edge                         udp %s, tcp %s, %s
  Echo trunk                   %s (udp, tcp)   dial %s

  Customer %q  domain %s
  Secret id %s
  Secret    %s
  Admin token %s

  Everything above is in %s
  Press Ctrl-C to stop.
`, i.SiteURL, i.LegacyURL, i.IssuerURL, i.IssuerURL, i.Edge.UDP, i.Edge.TCP, i.Edge.WS,
		i.Trunk, i.EchoURI, i.Customer, i.Domain, i.SecretID, i.Secret, i.AdminToken,
		filepath.Join(i.Data, demoFile))
}

// Wait blocks until ctx ends (nil) or a part fails (its error).
func (d *demo) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.errc:
		return err
	}
}

// Close stops every part.
func (d *demo) Close() error {
	select {
	case <-d.closed:
		return nil
	default:
	}
	close(d.closed)
	d.cancel()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, s := range d.https {
		errs = append(errs, s.Shutdown(shut))
	}
	errs = append(errs, d.edge.Close(), d.trunk.Close(), d.iss.Close())
	return errors.Join(errs...)
}
