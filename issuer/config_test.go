package issuer_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/issuer"
)

func TestConfigValidate(t *testing.T) {
	valid := func() issuer.Config {
		c := issuer.DefaultConfig()
		c.AdminToken = []byte("admin-token-0123456789")
		c.MasterKey = bytes.Repeat([]byte{1}, 32)
		return c
	}
	if c := valid(); c.Validate() != nil {
		t.Fatalf("defaults with secrets: %v", c.Validate())
	}
	for _, tt := range []struct {
		name   string
		change func(*issuer.Config)
		names  string // what the error must name
	}{
		{"a relative url is refused", func(c *issuer.Config) { c.URL = "/issuer" }, "url"},
		{"an unknown signing algorithm is refused", func(c *issuer.Config) { c.SigningAlg = "HS256" }, "signing_alg"},
		{"a token lifetime under a second is refused", func(c *issuer.Config) { c.TokenTTL = time.Millisecond }, "token_ttl"},
		{"an assertion lifetime over a day is refused", func(c *issuer.Config) { c.AssertionTTL = 25 * time.Hour }, "assertion_ttl"},
		{"an empty edge audience is refused", func(c *issuer.Config) { c.Edge.Audience = "" }, "edge.audience"},
		{"an unknown ephemeral hash is refused", func(c *issuer.Config) { c.Ephemeral.Hash = "md5" }, "ephemeral.hash"},
		{"a negative rate limit is refused", func(c *issuer.Config) { c.RateLimit.PerSource = -1 }, "rate_limit"},
		{"a trusted proxy that is not an address or prefix is refused", func(c *issuer.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "proxy.example"} }, `"proxy.example"`},
		{"a trusted proxy with an IPv6 zone is refused", func(c *issuer.Config) { c.TrustedProxies = []string{"fe80::1%eth0", "127.0.0.0/8"} }, `"fe80::1%eth0"`},
		{"a short admin token is refused", func(c *issuer.Config) { c.AdminToken = []byte("short") }, "admin token"},
		{"a missing master key is refused", func(c *issuer.Config) { c.MasterKey = nil }, "master key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.Validate()
			if !errors.Is(err, issuer.ErrConfig) || !strings.Contains(err.Error(), tt.names) {
				t.Fatalf("Validate = %v, want ErrConfig naming %s", err, tt.names)
			}
		})
	}
	t.Run("trusted proxies as addresses and prefixes are accepted", func(t *testing.T) {
		c := valid()
		c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
