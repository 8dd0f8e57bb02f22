package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// issuerConfig mirrors the issuer keys of SPEC §5.
type issuerConfig struct {
	Listen         string        `koanf:"listen" desc:"HTTP listen address"`
	URL            string        `koanf:"url" desc:"issuer URL: iss of edge tokens, aud of customer assertions"`
	Data           string        `koanf:"data" desc:"directory of the store and key material"`
	AdminTokenFile string        `koanf:"admin_token_file" desc:"file holding the admin token (or TRUNKPASS_ADMIN_TOKEN)"`
	MasterKeyFile  string        `koanf:"master_key_file" desc:"file holding the master key (or TRUNKPASS_MASTER_KEY)"`
	SigningAlg     string        `koanf:"signing_alg" desc:"edge token signing algorithm: EdDSA, ES256 or RS256"`
	TokenTTL       time.Duration `koanf:"token_ttl" desc:"edge token lifetime"`
	AssertionTTL   time.Duration `koanf:"assertion_ttl" desc:"longest customer assertion lifetime"`
	Edge           struct {
		Audience  string   `koanf:"audience" desc:"aud of edge tokens"`
		Realm     string   `koanf:"realm" desc:"SIP realm of the edges"`
		Websocket []string `koanf:"websocket" desc:"WebSocket URLs of the edges"`
	} `koanf:"edge"`
	Ephemeral struct {
		SecretFile string `koanf:"secret_file" desc:"file holding the Digest edge shared secret"`
		Hash       string `koanf:"hash" desc:"HMAC hash of ephemeral credentials"`
	} `koanf:"ephemeral"`
	TURN struct {
		URLs       []string      `koanf:"urls" desc:"TURN server URLs"`
		SecretFile string        `koanf:"secret_file" desc:"file holding the TURN REST secret"`
		TTL        time.Duration `koanf:"ttl" desc:"TURN credential lifetime"`
	} `koanf:"turn"`
	RateLimit struct {
		PerCustomer int `koanf:"per_customer" desc:"token requests per second per customer (0 = off)"`
		PerSource   int `koanf:"per_source" desc:"token requests per second per source address (0 = off)"`
	} `koanf:"rate_limit"`

	// Runtime is not configuration and must survive Load.
	Runtime string `koanf:"-"`
}

func defaultIssuer() issuerConfig {
	var c issuerConfig
	c.Listen = "127.0.0.1:8080"
	c.URL = "http://127.0.0.1:8080"
	c.Data = "./trunkpass-data"
	c.SigningAlg = "EdDSA"
	c.TokenTTL = 10 * time.Minute
	c.AssertionTTL = 5 * time.Minute
	c.Edge.Audience = "sip:trunk.example.net"
	c.Edge.Realm = "trunk.example.net"
	c.Edge.Websocket = []string{"ws://127.0.0.1:8088"}
	c.Ephemeral.Hash = "sha1"
	c.TURN.TTL = time.Hour
	c.RateLimit.PerCustomer = 200
	c.RateLimit.PerSource = 50
	return c
}

// edgeConfig mirrors the edge keys of SPEC §5.
type edgeConfig struct {
	Listen       []string          `koanf:"listen" desc:"listen URLs"`
	Realm        string            `koanf:"realm" desc:"SIP realm"`
	Audience     string            `koanf:"audience" desc:"required aud of edge tokens"`
	Issuer       string            `koanf:"issuer" desc:"issuer URL"`
	Upstream     string            `koanf:"upstream" desc:"SIP URI of the trunk"`
	Routes       map[string]string `koanf:"routes" desc:"customer id=SIP URI of its trunk"`
	Authenticate []string          `koanf:"authenticate" desc:"methods that need credentials"`
	MaxTokenAge  time.Duration     `koanf:"max_token_age" desc:"refuse tokens whose exp - iat is longer"`
	Ephemeral    struct {
		SecretFile string `koanf:"secret_file" desc:"file holding the Digest shared secret"`
		Hash       string `koanf:"hash" desc:"HMAC hash"`
	} `koanf:"ephemeral"`
	Introspection struct {
		URL              string `koanf:"url" desc:"RFC 7662 introspection endpoint"`
		ClientID         string `koanf:"client_id" desc:"introspection client id"`
		ClientSecretFile string `koanf:"client_secret_file" desc:"file holding the introspection client secret"`
		ClientSecret     string `koanf:"client_secret" secret:"true"`
	} `koanf:"introspection"`
	// Peers is file-only: it has no flag or environment form.
	Peers []struct {
		Name string `koanf:"name"`
	} `koanf:"peers"`
}

func defaultEdge() edgeConfig {
	var c edgeConfig
	c.Listen = []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060", "ws://127.0.0.1:8088"}
	c.Realm = "trunk.example.net"
	c.Audience = "sip:trunk.example.net"
	c.Issuer = "http://127.0.0.1:8080"
	c.Upstream = "sip:127.0.0.1:5070"
	c.Routes = map[string]string{}
	c.Authenticate = []string{"REGISTER", "INVITE", "MESSAGE", "SUBSCRIBE"}
	c.MaxTokenAge = time.Hour
	c.Ephemeral.Hash = "sha1"
	return c
}

// environ returns a fake environment.
func environ(kv ...string) func() []string {
	return func() []string { return kv }
}

// loadIssuer binds flags on a fresh flag set, parses args and loads.
func loadIssuer(t *testing.T, file string, env []string, args ...string) (issuerConfig, error) {
	t.Helper()
	cfg := defaultIssuer()
	fs := pflag.NewFlagSet("issuer", pflag.ContinueOnError)
	fs.String("config", "", "configuration file")
	Bind(fs, cfg)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	if file != "" {
		file = filepath.Join("testdata", file)
	}
	err := load(&cfg, file, fs, "TRUNKPASS", environ(env...))
	return cfg, err
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		file     string
		env      []string
		args     []string
		listen   string
		audience string
		perCust  int
		ttl      time.Duration
		ws       []string
	}{
		{
			name:   "defaults",
			listen: "127.0.0.1:8080", audience: "sip:trunk.example.net", perCust: 200,
			ttl: 10 * time.Minute, ws: []string{"ws://127.0.0.1:8088"},
		},
		{
			name: "file over defaults", file: "issuer.yaml",
			listen: "0.0.0.0:9080", audience: "sip:trunk.example.net", perCust: 300,
			ttl: 10 * time.Minute, ws: []string{"wss://edge1.trunk.example.net:8443", "wss://edge2.trunk.example.net:8443"},
		},
		{
			name: "environment over file", file: "issuer.yaml",
			env: []string{
				"TRUNKPASS_LISTEN=10.0.0.1:80",
				"TRUNKPASS_EDGE_AUDIENCE=sip:env.example.net",
				"TRUNKPASS_RATE_LIMIT_PER_CUSTOMER=7",
				"TRUNKPASS_TOKEN_TTL=90s",
				"TRUNKPASS_EDGE_WEBSOCKET=wss://a:1, wss://b:2,,",
			},
			listen: "10.0.0.1:80", audience: "sip:env.example.net", perCust: 7,
			ttl: 90 * time.Second, ws: []string{"wss://a:1", "wss://b:2"},
		},
		{
			name: "flags over environment", file: "issuer.yaml",
			env: []string{
				"TRUNKPASS_LISTEN=10.0.0.1:80",
				"TRUNKPASS_EDGE_AUDIENCE=sip:env.example.net",
				"TRUNKPASS_RATE_LIMIT_PER_CUSTOMER=7",
				"TRUNKPASS_TOKEN_TTL=90s",
			},
			args:   []string{"--listen", ":443", "--edge.audience=sip:flag.example.net", "--rate_limit.per_customer=0", "--token_ttl=2m", "--edge.websocket=wss://f:1,wss://f:2"},
			listen: ":443", audience: "sip:flag.example.net", perCust: 0,
			ttl: 2 * time.Minute, ws: []string{"wss://f:1", "wss://f:2"},
		},
		{
			name:   "flags left at their defaults do not override",
			file:   "issuer.yaml",
			env:    []string{"TRUNKPASS_RATE_LIMIT_PER_CUSTOMER=7"},
			args:   []string{"--config", "ignored.yaml"},
			listen: "0.0.0.0:9080", audience: "sip:trunk.example.net", perCust: 7,
			ttl: 10 * time.Minute, ws: []string{"wss://edge1.trunk.example.net:8443", "wss://edge2.trunk.example.net:8443"},
		},
		{
			name:   "environment without a file",
			env:    []string{"TRUNKPASS_EDGE_WEBSOCKET=", "OTHER_LISTEN=nope", "TRUNKPASSLISTEN=nope"},
			listen: "127.0.0.1:8080", audience: "sip:trunk.example.net", perCust: 200,
			ttl: 10 * time.Minute, ws: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadIssuer(t, tt.file, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != tt.listen {
				t.Errorf("listen = %q, want %q", cfg.Listen, tt.listen)
			}
			if cfg.Edge.Audience != tt.audience {
				t.Errorf("edge.audience = %q, want %q", cfg.Edge.Audience, tt.audience)
			}
			if cfg.RateLimit.PerCustomer != tt.perCust {
				t.Errorf("rate_limit.per_customer = %d, want %d", cfg.RateLimit.PerCustomer, tt.perCust)
			}
			if cfg.TokenTTL != tt.ttl {
				t.Errorf("token_ttl = %v, want %v", cfg.TokenTTL, tt.ttl)
			}
			if !reflect.DeepEqual(cfg.Edge.Websocket, tt.ws) {
				t.Errorf("edge.websocket = %#v, want %#v", cfg.Edge.Websocket, tt.ws)
			}
		})
	}
}

func TestIssuerFileGolden(t *testing.T) {
	t.Parallel()
	cfg, err := loadIssuer(t, "issuer.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultIssuer()
	want.Listen = "0.0.0.0:9080"
	want.URL = "https://issuer.trunk.example.net"
	want.Data = "/var/lib/trunkpass"
	want.AdminTokenFile = "/run/secrets/admin_token"
	want.MasterKeyFile = "/run/secrets/master_key"
	want.SigningAlg = "ES256"
	want.AssertionTTL = 90 * time.Minute
	want.Edge.Websocket = []string{"wss://edge1.trunk.example.net:8443", "wss://edge2.trunk.example.net:8443"}
	want.Ephemeral.SecretFile = "/run/secrets/ephemeral"
	want.Ephemeral.Hash = "sha256"
	want.TURN.URLs = []string{"turn:turn.trunk.example.net:3478"}
	want.TURN.TTL = 2 * time.Hour
	want.RateLimit.PerCustomer = 300
	want.RateLimit.PerSource = 60
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestEdgeFile(t *testing.T) {
	t.Parallel()
	cfg := defaultEdge()
	fs := pflag.NewFlagSet("edge", pflag.ContinueOnError)
	Bind(fs, cfg)
	if err := fs.Parse([]string{"--authenticate=REGISTER"}); err != nil {
		t.Fatal(err)
	}
	env := environ(
		"TRUNKPASS_INTROSPECTION_CLIENT_SECRET=s3cret",
		"TRUNKPASS_MAX_TOKEN_AGE=45m",
	)
	if err := load(&cfg, "testdata/edge.yaml", fs, "TRUNKPASS_", env); err != nil {
		t.Fatal(err)
	}
	if want := []string{"udp://0.0.0.0:5060", "tcp://0.0.0.0:5060", "wss://0.0.0.0:8443"}; !reflect.DeepEqual(cfg.Listen, want) {
		t.Errorf("listen = %q, want %q", cfg.Listen, want)
	}
	if want := map[string]string{"acme": "sip:pbx.acme.example;transport=tcp", "globex.eu": "sip:sbc.globex.example"}; !reflect.DeepEqual(cfg.Routes, want) {
		t.Errorf("routes = %q, want %q", cfg.Routes, want)
	}
	if want := []string{"REGISTER"}; !reflect.DeepEqual(cfg.Authenticate, want) {
		t.Errorf("authenticate = %q, want %q", cfg.Authenticate, want)
	}
	if cfg.MaxTokenAge != 45*time.Minute {
		t.Errorf("max_token_age = %v, want 45m", cfg.MaxTokenAge)
	}
	if cfg.Introspection.ClientSecret != "s3cret" || cfg.Introspection.ClientID != "edge-1" {
		t.Errorf("introspection = %+v", cfg.Introspection)
	}
}

func TestMapsAndListsReplace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		env    []string
		args   []string
		routes map[string]string
		listen []string
	}{
		{
			name:   "file",
			routes: map[string]string{"acme": "sip:pbx.acme.example;transport=tcp", "globex.eu": "sip:sbc.globex.example"},
			listen: []string{"udp://0.0.0.0:5060", "tcp://0.0.0.0:5060", "wss://0.0.0.0:8443"},
		},
		{
			name:   "environment replaces the file's",
			env:    []string{"TRUNKPASS_ROUTES=initech=sip:a;transport=udp, hooli = sip:b", "TRUNKPASS_LISTEN=udp://:5060"},
			routes: map[string]string{"initech": "sip:a;transport=udp", "hooli": "sip:b"},
			listen: []string{"udp://:5060"},
		},
		{
			name:   "flags replace the environment's",
			env:    []string{"TRUNKPASS_ROUTES=initech=sip:a", "TRUNKPASS_LISTEN=udp://:5060"},
			args:   []string{"--routes=umbrella=sip:u", "--listen=tcp://:5060", "--listen=ws://:8088"},
			routes: map[string]string{"umbrella": "sip:u"},
			listen: []string{"tcp://:5060", "ws://:8088"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultEdge()
			fs := pflag.NewFlagSet("edge", pflag.ContinueOnError)
			Bind(fs, cfg)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := load(&cfg, "testdata/edge.yaml", fs, "TRUNKPASS", environ(tt.env...)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Routes, tt.routes) {
				t.Errorf("routes = %q, want %q", cfg.Routes, tt.routes)
			}
			if !reflect.DeepEqual(cfg.Listen, tt.listen) {
				t.Errorf("listen = %q, want %q", cfg.Listen, tt.listen)
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"listen":                   "TRUNKPASS_LISTEN",
		"edge.audience":            "TRUNKPASS_EDGE_AUDIENCE",
		"rate_limit.per_customer":  "TRUNKPASS_RATE_LIMIT_PER_CUSTOMER",
		"admin_token_file":         "TRUNKPASS_ADMIN_TOKEN_FILE",
		"introspection.client_id":  "TRUNKPASS_INTROSPECTION_CLIENT_ID",
		"turn.secret_file":         "TRUNKPASS_TURN_SECRET_FILE",
		"ephemeral.secret_file":    "TRUNKPASS_EPHEMERAL_SECRET_FILE",
		"introspection.url":        "TRUNKPASS_INTROSPECTION_URL",
		"rate_limit.per_source":    "TRUNKPASS_RATE_LIMIT_PER_SOURCE",
		"edge.websocket":           "TRUNKPASS_EDGE_WEBSOCKET",
		"max_token_age":            "TRUNKPASS_MAX_TOKEN_AGE",
		"introspection.client_sec": "TRUNKPASS_INTROSPECTION_CLIENT_SEC",
	} {
		if got := EnvName("TRUNKPASS", key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
		if got := EnvName("TRUNKPASS_", key); got != want {
			t.Errorf("EnvName(TRUNKPASS_, %q) = %q, want %q", key, got, want)
		}
	}
}

func TestEnvKeysWithUnderscores(t *testing.T) {
	t.Parallel()
	cfg, err := loadIssuer(t, "", []string{
		"TRUNKPASS_ADMIN_TOKEN_FILE=/run/admin",
		"TRUNKPASS_RATE_LIMIT_PER_SOURCE=9",
		// Secrets read with Secret, not keys: left alone.
		"TRUNKPASS_ADMIN_TOKEN=tok",
		"TRUNKPASS_MASTER_KEY=key",
		"TRUNKPASS_TURN_SECRET=turn",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminTokenFile != "/run/admin" || cfg.RateLimit.PerSource != 9 {
		t.Errorf("admin_token_file = %q, rate_limit.per_source = %d", cfg.AdminTokenFile, cfg.RateLimit.PerSource)
	}
}

func TestEnvCollision(t *testing.T) {
	t.Parallel()
	var cfg struct {
		AB struct {
			C string `koanf:"c"`
		} `koanf:"a_b"`
		A struct {
			BC string `koanf:"b_c"`
		} `koanf:"a"`
	}
	err := load(&cfg, "", nil, "TRUNKPASS", environ())
	if err == nil || !strings.Contains(err.Error(), "TRUNKPASS_A_B_C") {
		t.Fatalf("err = %v, want a collision on TRUNKPASS_A_B_C", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		env  []string
		want []string // substrings of the error
	}{
		{
			name: "unknown keys", file: "unknown.yaml",
			want: []string{`unknown key "edge.audiance"`, `unknown key "rate_limit.per_customer"`, `unknown key "Token_TTL"`, `unknown key "colour"`, "unknown.yaml"},
		},
		{
			name: "duration without unit", file: "bare_duration.yaml",
			want: []string{"token_ttl: a duration needs a unit"},
		},
		{name: "missing file", file: "absent.yaml", want: []string{"absent.yaml"}},
		{name: "malformed YAML", file: "malformed.yaml", want: []string{"malformed.yaml"}},
		{name: "wrong type in file", file: "wrong_type.yaml", want: []string{"per_customer"}},
		{
			name: "bad environment values",
			env:  []string{"TRUNKPASS_TOKEN_TTL=10", "TRUNKPASS_RATE_LIMIT_PER_SOURCE=many"},
			want: []string{"TRUNKPASS_TOKEN_TTL", "TRUNKPASS_RATE_LIMIT_PER_SOURCE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadIssuer(t, tt.file, tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !reflect.DeepEqual(cfg, defaultIssuer()) {
				t.Errorf("dst changed on error: %+v", cfg)
			}
		})
	}
}

func TestFileOnlyKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(path, []byte("peers: [{name: a}, {name: b}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := defaultEdge()
	if err := load(&cfg, path, nil, "TRUNKPASS", environ()); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Peers) != 2 || cfg.Peers[1].Name != "b" {
		t.Errorf("peers = %+v", cfg.Peers)
	}
	err := load(&cfg, "", nil, "TRUNKPASS", environ("TRUNKPASS_PEERS=a"))
	if err == nil || !strings.Contains(err.Error(), "only be set in the configuration file") {
		t.Errorf("err = %v", err)
	}
}

func TestNullSectionKeepsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadIssuer(t, "null_section.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Edge.Audience != "sip:trunk.example.net" || cfg.RateLimit.PerCustomer != 200 {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.RateLimit.PerSource != 0 {
		t.Errorf("per_source = %d, want 0 (an empty value is zero)", cfg.RateLimit.PerSource)
	}
}

func TestUntaggedFieldsKept(t *testing.T) {
	t.Parallel()
	cfg := defaultIssuer()
	cfg.Runtime = "keep me"
	if err := load(&cfg, "testdata/issuer.yaml", nil, "", environ("TRUNKPASS_LISTEN=x")); err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime != "keep me" {
		t.Errorf("Runtime = %q", cfg.Runtime)
	}
	if cfg.Listen != "0.0.0.0:9080" {
		t.Errorf("listen = %q: an empty prefix must not read the environment", cfg.Listen)
	}
}

func TestLoadNeedsPointer(t *testing.T) {
	t.Parallel()
	for _, dst := range []any{defaultIssuer(), nil, (*issuerConfig)(nil), new(int)} {
		if err := Load(dst, "", nil, ""); err == nil {
			t.Errorf("Load(%T) succeeded", dst)
		}
	}
}

func TestBindFlags(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("edge", pflag.ContinueOnError)
	Bind(fs, defaultEdge())
	if fs.Lookup("introspection.client_secret") != nil {
		t.Error("a secret field got a flag")
	}
	if fs.Lookup("peers") != nil {
		t.Error("a file-only field got a flag")
	}
	for name, typ := range map[string]string{
		"listen":                           "stringSlice",
		"routes":                           "stringToString",
		"max_token_age":                    "duration",
		"introspection.client_secret_file": "string",
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("no flag --%s", name)
			continue
		}
		if f.Value.Type() != typ {
			t.Errorf("--%s is %s, want %s", name, f.Value.Type(), typ)
		}
	}
}

// TestBindGolden pins the flags of the issuer configuration: names, types,
// defaults and usage text. Run with -update to rewrite.
func TestBindGolden(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("issuer", pflag.ContinueOnError)
	Bind(fs, defaultIssuer())
	got := fs.FlagUsages()
	golden := filepath.Join("testdata", "issuer.flags.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("flag usage differs from %s (run go test -update):\n%s", golden, got)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	withNewline := filepath.Join(dir, "token")
	if err := os.WriteFile(withNewline, []byte("file-token\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name    string
		env     string // value of TRUNKPASS_TEST_SECRET; "-" unset
		file    string
		want    string
		wantNil bool
		wantErr string
	}{
		{name: "environment wins", env: "env-token", file: withNewline, want: "env-token"},
		{name: "file, trailing newline trimmed", env: "-", file: withNewline, want: "file-token"},
		{name: "empty variable falls back to file", env: "", file: withNewline, want: "file-token"},
		{name: "neither", env: "-", wantNil: true},
		{name: "missing file", env: "-", file: missing, wantErr: missing},
		{name: "empty file", env: "-", file: empty, wantErr: empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "-" {
				t.Setenv("TRUNKPASS_TEST_SECRET", tt.env)
			} else {
				t.Setenv("TRUNKPASS_TEST_SECRET", "")
				os.Unsetenv("TRUNKPASS_TEST_SECRET")
			}
			got, err := Secret("TRUNKPASS_TEST_SECRET", tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to name %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNil {
				if got != nil {
					t.Fatalf("got %q, want nil", got)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("missing file error wraps fs.ErrNotExist", func(t *testing.T) {
		_, err := Secret("", missing)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDecodeMasterKey(t *testing.T) {
	t.Parallel()
	key32 := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "standard", in: key32},
		{name: "standard with newline", in: key32 + "\n"},
		{name: "unpadded", in: strings.TrimRight(key32, "=")},
		{name: "url-safe", in: "_-8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0="},
		{name: "16 bytes", in: "AAECAwQFBgcICQoLDA0ODw==", wantErr: "got 16 bytes"},
		{name: "33 bytes", in: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", wantErr: "got 33 bytes"},
		{name: "not base64", in: "correct horse battery staple!!", wantErr: "not valid base64"},
		{name: "empty", in: "", wantErr: "got 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := DecodeMasterKey([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(key) != MasterKeySize {
					t.Fatalf("len = %d", len(key))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrMasterKey) {
				t.Fatalf("err = %v, want %q wrapping ErrMasterKey", err, tt.wantErr)
			}
			if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error %q leaks the key", err)
			}
		})
	}
}

func TestMasterKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRUNKPASS_TEST_MASTER_KEY", "")

	key, err := MasterKey("TRUNKPASS_TEST_MASTER_KEY", good)
	if err != nil || len(key) != 32 || key[31] != 31 {
		t.Fatalf("key = %v, err = %v", key, err)
	}
	if _, err := MasterKey("TRUNKPASS_TEST_MASTER_KEY", bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("err = %v, want it to name the file", err)
	}
	t.Setenv("TRUNKPASS_TEST_MASTER_KEY", "c2hvcnQ=")
	if _, err := MasterKey("TRUNKPASS_TEST_MASTER_KEY", good); err == nil || !strings.Contains(err.Error(), "TRUNKPASS_TEST_MASTER_KEY") || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Errorf("err = %v, want it to name the variable and not the key", err)
	}
	os.Unsetenv("TRUNKPASS_TEST_MASTER_KEY")
	if key, err := MasterKey("TRUNKPASS_TEST_MASTER_KEY", ""); key != nil || err != nil {
		t.Errorf("neither set: key = %v, err = %v", key, err)
	}
}
