package verifier

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/chain"
)

// Config is the edge configuration, with the keys of SPEC §5 edge.yaml.
type Config struct {
	// Listen lists the listeners: udp://host:port, tcp://, tls://, ws://, wss://.
	Listen []string `koanf:"listen" desc:"listeners: udp://, tcp://, tls://, ws://, wss:// host:port URLs"`
	// Host is the address put in Via and Record-Route; the first listener's
	// host when empty (127.0.0.1 for a wildcard).
	Host string `koanf:"host" desc:"host name or address the edge advertises in Via and Record-Route"`
	// Realm of the challenges.
	Realm string `koanf:"realm" desc:"authentication realm"`
	// Audience edge tokens must name.
	Audience string `koanf:"audience" desc:"audience edge tokens must name"`
	// Issuer URL: iss of edge tokens; its RFC 8414 metadata names the JWKS.
	Issuer string `koanf:"issuer" desc:"issuer URL (JWKS found through RFC 8414 metadata)"`
	// JWKSURL, when set, is used instead of metadata discovery.
	JWKSURL string `koanf:"jwks_url" desc:"JWKS URL, instead of discovery"`
	// Upstream is the trunk's SIP URI.
	Upstream string `koanf:"upstream" desc:"SIP URI of the upstream trunk"`
	// Routes maps a customer id to its own trunk's SIP URI.
	Routes map[string]string `koanf:"routes" desc:"customer id=SIP URI routes"`
	// TrunkSources lists address prefixes the trunks send from, beyond the
	// upstream and route addresses themselves; requests from them reach
	// registered visitors without credentials.
	TrunkSources []string `koanf:"trunk_sources" desc:"CIDR prefixes the trunks send requests from"`
	// Authenticate lists the methods that need credentials.
	Authenticate []string `koanf:"authenticate" desc:"methods that need credentials"`
	// MaxTokenAge refuses tokens whose exp - iat is longer.
	MaxTokenAge time.Duration `koanf:"max_token_age" desc:"refuse tokens living longer than this"`
	// Leeway is the clock skew tolerated on token exp, nbf and iat.
	Leeway time.Duration `koanf:"leeway" desc:"clock skew tolerated on token exp, nbf and iat"`
	// Ephemeral configures Digest with ephemeral credentials.
	Ephemeral EphemeralConfig `koanf:"ephemeral"`
	// Introspection configures RFC 7662 Bearer checking.
	Introspection IntrospectionConfig `koanf:"introspection"`
	// TLS holds the certificate of tls:// and wss:// listeners.
	TLS TLSConfig `koanf:"tls"`
	// HSProfiles configures OpenSIPS auth_jwt style HS256 profiles.
	HSProfiles HSProfilesConfig `koanf:"hs_profiles"`
	// RateLimit bounds failed authentications per source address.
	RateLimit RateLimitConfig `koanf:"rate_limit"`
	// TokenCache bounds the number of verified tokens remembered.
	TokenCache int `koanf:"token_cache" desc:"verified tokens remembered (0: 100000, -1: none)"`
	// MaxContacts bounds the bindings of one AOR and the Contact headers
	// of one REGISTER (default 10).
	MaxContacts int `koanf:"max_contacts" desc:"bindings per AOR and Contacts per REGISTER (0: 10)"`
	// MaxExpires caps the Expires of registrations (seconds).
	MaxExpires int `koanf:"max_expires" desc:"cap on REGISTER expiry, seconds"`
	// UDPLinger is how long a finished non-INVITE server transaction over
	// UDP is kept to absorb retransmissions (RFC 3261 Timer J, 32 s). A
	// retransmitted REGISTER after it is processed again (idempotent, and
	// a token-cache hit), so shortening it trades little for memory at
	// high load. It sets sipgo's process-wide Timer_J; 0 keeps the default.
	UDPLinger time.Duration `koanf:"udp_linger" desc:"keep finished UDP non-INVITE transactions this long (Timer J; 0: 32s)"`
	// Metrics is the listen address of the Prometheus /metrics endpoint
	// served by the edge command; empty for none.
	Metrics string `koanf:"metrics" desc:"address of the /metrics HTTP endpoint (empty: none)"`
	// LogLevel is the zerolog level (debug, info, warn, error).
	LogLevel string `koanf:"log_level" desc:"log level"`
}

// EphemeralConfig configures Digest with ephemeral credentials.
type EphemeralConfig struct {
	// SecretFile holds the shared secrets, one per line, newest first;
	// TRUNKPASS_EPHEMERAL_SECRET overrides it.
	SecretFile string `koanf:"secret_file" desc:"file of shared secrets, one per line, newest first"`
	// Hash of the password HMAC: sha1 (default), sha256, sha384, sha512.
	Hash string `koanf:"hash" desc:"HMAC hash of ephemeral passwords"`
	// MaxLifetime refuses credentials expiring further ahead (default 24h).
	MaxLifetime time.Duration `koanf:"max_lifetime" desc:"refuse ephemeral credentials expiring further ahead"`
	// Secrets are the loaded secrets, newest first (library use).
	Secrets [][]byte `koanf:"-"`
}

// IntrospectionConfig configures RFC 7662 introspection.
type IntrospectionConfig struct {
	URL              string `koanf:"url" desc:"introspection endpoint"`
	ClientID         string `koanf:"client_id" desc:"introspection client id"`
	ClientSecretFile string `koanf:"client_secret_file" desc:"file holding the introspection client secret"`
	// ClientSecret is the loaded secret (library use); from
	// TRUNKPASS_INTROSPECTION_CLIENT_SECRET or ClientSecretFile.
	ClientSecret string `koanf:"-"`
}

// TLSConfig names the certificate of TLS listeners.
type TLSConfig struct {
	CertFile string `koanf:"cert_file" desc:"PEM certificate of tls:// and wss:// listeners"`
	KeyFile  string `koanf:"key_file" desc:"PEM key of tls:// and wss:// listeners"`
}

// HSProfilesConfig configures HS256 profiles.
type HSProfilesConfig struct {
	// TagClaim names the claim that selects a profile ("tag").
	TagClaim string `koanf:"tag_claim" desc:"claim naming the HS profile"`
	// Profiles of the edge.
	Profiles []HSProfileConfig `koanf:"profiles"`
}

// HSProfileConfig is one HS profile.
type HSProfileConfig struct {
	Tag     string            `koanf:"tag"`
	Domain  string            `koanf:"domain"`
	Headers map[string]string `koanf:"headers"`
	Methods []string          `koanf:"methods"`
	Secrets []HSSecretConfig  `koanf:"secrets"`
}

// HSSecretConfig is a profile secret with its validity window.
type HSSecretConfig struct {
	ID         string    `koanf:"id"`
	SecretFile string    `koanf:"secret_file"`
	NotBefore  time.Time `koanf:"not_before"`
	NotAfter   time.Time `koanf:"not_after"`
	// Secret is the loaded value (library use).
	Secret []byte `koanf:"-"`
}

// RateLimitConfig bounds failed authentications per source address.
type RateLimitConfig struct {
	// FailuresPerSecond allowed per source address; 0 turns limiting off.
	FailuresPerSecond float64 `koanf:"failures_per_second" desc:"failed authentications allowed per source address per second (0: off)"`
	// Burst of failures allowed.
	Burst int `koanf:"burst" desc:"burst of failed authentications per source address"`
}

// DefaultConfig returns the defaults of SPEC §5.
func DefaultConfig() Config {
	return Config{
		Listen:       []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060", "ws://127.0.0.1:8088"},
		Realm:        "trunk.example.net",
		Audience:     "sip:trunk.example.net",
		Issuer:       "http://127.0.0.1:8080",
		Upstream:     "sip:127.0.0.1:5070",
		Routes:       map[string]string{},
		Authenticate: []string{"REGISTER", "INVITE", "MESSAGE", "SUBSCRIBE"},
		MaxTokenAge:  time.Hour,
		Leeway:       30 * time.Second,
		Ephemeral:    EphemeralConfig{Hash: "sha1", MaxLifetime: 24 * time.Hour},
		HSProfiles:   HSProfilesConfig{TagClaim: "tag"},
		RateLimit:    RateLimitConfig{FailuresPerSecond: 5, Burst: 20},
		MaxExpires:   3600,
		MaxContacts:  10,
		LogLevel:     "info",
	}
}

// listener is a parsed Listen entry.
type listener struct {
	network string // udp, tcp, tls, ws, wss
	addr    string // host:port
}

func parseListen(s string) (listener, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return listener{}, fmt.Errorf("listen %q: want scheme://host:port", s)
	}
	switch u.Scheme {
	case "udp", "tcp", "tls", "ws", "wss":
	default:
		return listener{}, fmt.Errorf("listen %q: scheme must be udp, tcp, tls, ws or wss", s)
	}
	if u.Port() == "" {
		return listener{}, fmt.Errorf("listen %q: no port", s)
	}
	return listener{network: u.Scheme, addr: u.Host}, nil
}

// target is where a request is forwarded: a transport and host:port.
type target struct {
	transport string // UDP, TCP, TLS, WS, WSS
	hostport  string
	uri       sip.Uri
}

// parseTarget reads a SIP URI such as "sip:10.0.0.5:5070;transport=tcp".
func parseTarget(s string) (target, error) {
	var u sip.Uri
	if err := sip.ParseUri(strings.TrimSpace(s), &u); err != nil || u.Host == "" {
		return target{}, fmt.Errorf("SIP URI %q: %w", s, chain.ErrMalformed)
	}
	return targetOf(u), nil
}

func targetOf(u sip.Uri) target {
	tp := "UDP"
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToUpper(v)
	} else if u.Scheme == "sips" {
		tp = "TLS"
	}
	port := u.Port
	if port == 0 {
		port = sip.DefaultPort(tp)
	}
	host := u.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return target{transport: tp, hostport: fmt.Sprintf("%s:%d", host, port), uri: u}
}

// validate checks the configuration and fills defaults.
func (c *Config) validate() error {
	var errs []error
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("listen: at least one listener"))
	}
	for _, l := range c.Listen {
		if _, err := parseListen(l); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Realm == "" {
		errs = append(errs, errors.New("realm is required"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if c.Upstream != "" {
		if _, err := parseTarget(c.Upstream); err != nil {
			errs = append(errs, fmt.Errorf("upstream: %w", err))
		}
	}
	for cid, r := range c.Routes {
		if _, err := parseTarget(r); err != nil {
			errs = append(errs, fmt.Errorf("routes.%s: %w", cid, err))
		}
	}
	for _, p := range c.TrunkSources {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("trunk_sources: %q: %w", p, err))
		}
	}
	for i, m := range c.Authenticate {
		c.Authenticate[i] = strings.ToUpper(m)
	}
	if slices.Contains(c.Authenticate, "ACK") || slices.Contains(c.Authenticate, "CANCEL") {
		errs = append(errs, errors.New("authenticate: ACK and CANCEL carry no credentials"))
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		errs = append(errs, errors.New("leeway: between 0 and 5m"))
	}
	if c.MaxTokenAge <= 0 {
		c.MaxTokenAge = time.Hour
	}
	if c.MaxContacts <= 0 {
		c.MaxContacts = 10
	}
	if c.MaxExpires <= 0 {
		c.MaxExpires = 3600
	}
	if _, err := chain.ParseHash(c.Ephemeral.Hash); err != nil {
		errs = append(errs, fmt.Errorf("ephemeral.hash: %w", err))
	}
	if c.Issuer == "" && c.Introspection.URL == "" && len(c.Ephemeral.Secrets) == 0 && len(c.HSProfiles.Profiles) == 0 {
		errs = append(errs, errors.New("no authenticator: set issuer, introspection.url, an ephemeral secret or hs_profiles"))
	}
	return errors.Join(errs...)
}
