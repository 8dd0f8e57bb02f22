package config_test

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/trunkpass/trunkpass/internal/config"
)

// edgeConfig is how a command declares its configuration.
type edgeConfig struct {
	Listen      []string      `koanf:"listen" desc:"listen URLs (udp://, tcp://, ws://, wss://)"`
	Audience    string        `koanf:"audience" desc:"required aud of edge tokens"`
	MaxTokenAge time.Duration `koanf:"max_token_age" desc:"refuse tokens whose exp - iat is longer"`
	Ephemeral   struct {
		SecretFile string `koanf:"secret_file" desc:"file holding the Digest shared secret (or TRUNKPASS_EPHEMERAL_SECRET)"`
		Hash       string `koanf:"hash" desc:"HMAC hash: sha1, sha256, sha384, sha512"`
	} `koanf:"ephemeral"`
	Introspection struct {
		URL          string `koanf:"url" desc:"RFC 7662 introspection endpoint"`
		ClientSecret string `koanf:"client_secret" secret:"true"` // environment or file only
	} `koanf:"introspection"`
}

func defaultEdge() edgeConfig {
	var c edgeConfig
	c.Listen = []string{"udp://127.0.0.1:5060", "ws://127.0.0.1:8088"}
	c.Audience = "sip:trunk.example.net"
	c.MaxTokenAge = time.Hour
	c.Ephemeral.Hash = "sha1"
	return c
}

func newEdgeCommand() *cobra.Command {
	cfg := defaultEdge()
	var configFile string
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run the SIP edge",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Load(&cfg, configFile, cmd.Flags(), "TRUNKPASS"); err != nil {
				return err
			}
			secret, err := config.Secret("TRUNKPASS_EPHEMERAL_SECRET", cfg.Ephemeral.SecretFile)
			if err != nil {
				return err
			}
			fmt.Println("listen:", cfg.Listen)
			fmt.Println("audience:", cfg.Audience)
			fmt.Println("max_token_age:", cfg.MaxTokenAge)
			fmt.Println("digest enabled:", secret != nil)
			return nil
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file")
	config.Bind(cmd.Flags(), cfg)
	return cmd
}

func Example() {
	os.Setenv("TRUNKPASS_MAX_TOKEN_AGE", "30m")
	defer os.Unsetenv("TRUNKPASS_MAX_TOKEN_AGE")

	// Defaults < testdata/edge_example.yaml < environment < flags.
	cmd := newEdgeCommand()
	cmd.SetArgs([]string{"--config", "testdata/edge_example.yaml", "--listen=wss://0.0.0.0:8443"})
	if err := cmd.Execute(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// listen: [wss://0.0.0.0:8443]
	// audience: sip:edge.example.net
	// max_token_age: 30m0s
	// digest enabled: false
}
