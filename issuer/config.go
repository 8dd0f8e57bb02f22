package issuer

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/config"
)

// Environment variables that carry the issuer's secrets.
const (
	EnvAdminToken      = "TRUNKPASS_ADMIN_TOKEN"
	EnvMasterKey       = "TRUNKPASS_MASTER_KEY"
	EnvEphemeralSecret = "TRUNKPASS_EPHEMERAL_SECRET"
	EnvTURNSecret      = "TRUNKPASS_TURN_SECRET"
)

// Config is the issuer configuration; the koanf keys are those of SPEC §5.
// Secret values are not configuration keys: LoadSecrets fills them from
// the environment or the *_file keys, and programs that embed an issuer
// may set them directly.
type Config struct {
	Listen         string          `koanf:"listen" desc:"HTTP listen address"`
	URL            string          `koanf:"url" desc:"issuer URL: iss of edge tokens, aud of customer assertions"`
	Data           string          `koanf:"data" desc:"directory of the store and key material"`
	AdminTokenFile string          `koanf:"admin_token_file" desc:"file holding the admin token (or TRUNKPASS_ADMIN_TOKEN)"`
	MasterKeyFile  string          `koanf:"master_key_file" desc:"file holding the master key (or TRUNKPASS_MASTER_KEY)"`
	SigningAlg     string          `koanf:"signing_alg" desc:"edge token signing algorithm: EdDSA, ES256 or RS256"`
	TokenTTL       time.Duration   `koanf:"token_ttl" desc:"edge token lifetime"`
	AssertionTTL   time.Duration   `koanf:"assertion_ttl" desc:"longest customer assertion lifetime"`
	Edge           EdgeConfig      `koanf:"edge"`
	Ephemeral      EphemeralConfig `koanf:"ephemeral"`
	TURN           TURNConfig      `koanf:"turn"`
	RateLimit      RateLimitConfig `koanf:"rate_limit"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For or X-Real-IP header names the client, for
	// per-source limits and logs. Empty: the TCP peer is the client.
	TrustedProxies []string `koanf:"trusted_proxies" desc:"addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For names the client (empty: the TCP peer)"`

	// AdminToken guards /v1/admin; required.
	AdminToken []byte `koanf:"-"`
	// MasterKey (32 bytes) seals secrets and private keys; required.
	MasterKey []byte `koanf:"-"`
	// EphemeralSecret, when set, adds Digest ephemeral credentials to
	// token responses.
	EphemeralSecret []byte `koanf:"-"`
	// TURNSecret, when set with TURN.URLs, adds ice_servers.
	TURNSecret []byte `koanf:"-"`
}

// EdgeConfig describes the SIP edges tokens are for.
type EdgeConfig struct {
	Audience  string   `koanf:"audience" desc:"aud of edge tokens"`
	Realm     string   `koanf:"realm" desc:"SIP realm of the edges"`
	Websocket []string `koanf:"websocket" desc:"WebSocket URLs of the edges"`
}

// EphemeralConfig configures Digest ephemeral credentials for edges.
type EphemeralConfig struct {
	SecretFile string `koanf:"secret_file" desc:"file holding the Digest edge shared secret"`
	Hash       string `koanf:"hash" desc:"HMAC hash of ephemeral credentials"`
}

// TURNConfig configures coturn REST credentials (use-auth-secret).
type TURNConfig struct {
	URLs       []string      `koanf:"urls" desc:"TURN server URLs"`
	SecretFile string        `koanf:"secret_file" desc:"file holding the TURN REST secret"`
	TTL        time.Duration `koanf:"ttl" desc:"TURN credential lifetime"`
}

// RateLimitConfig bounds token requests per second (burst twice that);
// zero turns a limit off.
type RateLimitConfig struct {
	PerCustomer int `koanf:"per_customer" desc:"token requests per second per customer (0 = off)"`
	PerSource   int `koanf:"per_source" desc:"token requests per second per source address (0 = off)"`
}

// DefaultConfig returns the defaults of SPEC §5.
func DefaultConfig() Config {
	return Config{
		Listen:       "127.0.0.1:8080",
		URL:          "http://127.0.0.1:8080",
		Data:         "./trunkpass-data",
		SigningAlg:   chain.AlgEdDSA,
		TokenTTL:     10 * time.Minute,
		AssertionTTL: 5 * time.Minute,
		Edge: EdgeConfig{
			Audience:  "sip:trunk.example.net",
			Realm:     "trunk.example.net",
			Websocket: []string{"ws://127.0.0.1:8088"},
		},
		Ephemeral: EphemeralConfig{Hash: "sha1"},
		TURN:      TURNConfig{TTL: time.Hour},
		RateLimit: RateLimitConfig{PerCustomer: 200, PerSource: 50},
	}
}

// Validate reports the first problem of the configuration, wrapping
// ErrConfig. It never includes a secret value.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("url %q must be an absolute http(s) URL", c.URL)
	}
	switch c.SigningAlg {
	case chain.AlgEdDSA, chain.AlgES256, chain.AlgRS256:
	default:
		return bad("signing_alg %q: want EdDSA, ES256 or RS256", c.SigningAlg)
	}
	if c.TokenTTL < time.Second || c.TokenTTL > 24*time.Hour {
		return bad("token_ttl %s: want 1s to 24h", c.TokenTTL)
	}
	if c.AssertionTTL < time.Second || c.AssertionTTL > 24*time.Hour {
		return bad("assertion_ttl %s: want 1s to 24h", c.AssertionTTL)
	}
	if c.Edge.Audience == "" {
		return bad("edge.audience is required")
	}
	if _, err := chain.ParseHash(c.Ephemeral.Hash); err != nil {
		return bad("ephemeral.hash %q: want sha1, sha256, sha384 or sha512", c.Ephemeral.Hash)
	}
	if len(c.TURNSecret) > 0 && len(c.TURN.URLs) > 0 && c.TURN.TTL < time.Second {
		return bad("turn.ttl %s: want at least 1s", c.TURN.TTL)
	}
	if c.RateLimit.PerCustomer < 0 || c.RateLimit.PerSource < 0 {
		return bad("rate_limit values must not be negative")
	}
	for _, p := range c.TrustedProxies {
		// As gin reads them: a CIDR prefix, or an address without a zone.
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return bad("trusted_proxies entry %q is neither an address nor a CIDR prefix", p)
		}
	}
	if len(c.AdminToken) < 16 {
		return bad("admin token missing or shorter than 16 bytes (%s or admin_token_file)", EnvAdminToken)
	}
	if len(c.MasterKey) != config.MasterKeySize {
		return bad("master key missing (%s or master_key_file, base64 of 32 bytes)", EnvMasterKey)
	}
	return nil
}

// LoadSecrets fills the secret fields that are still empty from their
// environment variables or files.
func (c *Config) LoadSecrets() error {
	var err error
	if c.AdminToken == nil {
		if c.AdminToken, err = config.Secret(EnvAdminToken, c.AdminTokenFile); err != nil {
			return err
		}
	}
	if c.MasterKey == nil {
		if c.MasterKey, err = config.MasterKey(EnvMasterKey, c.MasterKeyFile); err != nil {
			return err
		}
	}
	if c.EphemeralSecret == nil {
		if c.EphemeralSecret, err = config.Secret(EnvEphemeralSecret, c.Ephemeral.SecretFile); err != nil {
			return err
		}
	}
	if c.TURNSecret == nil {
		if c.TURNSecret, err = config.Secret(EnvTURNSecret, c.TURN.SecretFile); err != nil {
			return err
		}
	}
	return nil
}

// Names of the files GenerateSecrets keeps in the data directory.
const (
	GeneratedAdminTokenFile = "admin.token"
	GeneratedMasterKeyFile  = "master.key"
)

// GenerateSecrets gives an admin token and a master key that are still
// missing a value kept in the data directory: read from admin.token and
// master.key there if those exist, else generated and written (mode 0600).
// It returns the paths of the files it created, so the caller can log
// where (never what) they are.
func (c *Config) GenerateSecrets() (created []string, err error) {
	if c.AdminToken != nil && c.MasterKey != nil {
		return nil, nil
	}
	if c.Data == "" {
		return nil, fmt.Errorf("%w: no data directory to keep generated secrets in", ErrConfig)
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	get := func(name string, gen func() []byte) ([]byte, error) {
		path := filepath.Join(c.Data, name)
		b, err := config.Secret("", path)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		v := gen()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		_, werr := f.Write(append(v, '\n'))
		if serr := f.Sync(); werr == nil {
			werr = serr
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("write %s: %w", path, werr)
		}
		created = append(created, path)
		return v, nil
	}
	if c.AdminToken == nil {
		if c.AdminToken, err = get(GeneratedAdminTokenFile, func() []byte { return []byte(randomToken(32)) }); err != nil {
			return created, err
		}
	}
	if c.MasterKey == nil {
		raw, err := get(GeneratedMasterKeyFile, func() []byte {
			k := make([]byte, config.MasterKeySize)
			rand.Read(k)
			return []byte(base64.StdEncoding.EncodeToString(k))
		})
		if err != nil {
			return created, err
		}
		if c.MasterKey, err = config.DecodeMasterKey(raw); err != nil {
			return created, err
		}
	}
	return created, nil
}

// randomToken returns n random bytes in unpadded base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
