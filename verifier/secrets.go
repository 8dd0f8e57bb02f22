package verifier

import (
	"bytes"
	"fmt"

	"github.com/trunkpass/trunkpass/internal/config"
)

// Environment variables that carry the edge's secrets.
const (
	EnvEphemeralSecret           = "TRUNKPASS_EPHEMERAL_SECRET"
	EnvIntrospectionClientSecret = "TRUNKPASS_INTROSPECTION_CLIENT_SECRET"
)

// LoadSecrets reads the secrets the configuration names: the ephemeral
// secrets (TRUNKPASS_EPHEMERAL_SECRET, else ephemeral.secret_file with one
// secret per line, newest first), the introspection client secret
// (TRUNKPASS_INTROSPECTION_CLIENT_SECRET, else
// introspection.client_secret_file) and the HS profile secret files.
// Secrets already set in c are kept.
func (c *Config) LoadSecrets() error {
	if len(c.Ephemeral.Secrets) == 0 {
		raw, err := config.Secret(EnvEphemeralSecret, c.Ephemeral.SecretFile)
		if err != nil {
			return fmt.Errorf("ephemeral secret: %w", err)
		}
		for _, line := range bytes.Split(raw, []byte("\n")) {
			if s := bytes.TrimSpace(line); len(s) > 0 {
				c.Ephemeral.Secrets = append(c.Ephemeral.Secrets, s)
			}
		}
	}
	if c.Introspection.ClientSecret == "" && c.Introspection.URL != "" {
		raw, err := config.Secret(EnvIntrospectionClientSecret, c.Introspection.ClientSecretFile)
		if err != nil {
			return fmt.Errorf("introspection client secret: %w", err)
		}
		c.Introspection.ClientSecret = string(raw)
	}
	for i := range c.HSProfiles.Profiles {
		p := &c.HSProfiles.Profiles[i]
		for j := range p.Secrets {
			s := &p.Secrets[j]
			if len(s.Secret) > 0 {
				continue
			}
			raw, err := config.Secret("", s.SecretFile)
			if err != nil || raw == nil {
				return fmt.Errorf("hs profile %s secret %s: no secret_file or unreadable: %v", p.Tag, s.ID, err)
			}
			s.Secret = raw
		}
	}
	return nil
}
