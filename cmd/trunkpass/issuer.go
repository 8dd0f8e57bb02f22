package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trunkpass/trunkpass/internal/config"
	"github.com/trunkpass/trunkpass/internal/logging"
	"github.com/trunkpass/trunkpass/issuer"
)

func init() { rootCmd.AddCommand(newIssuerCommand()) }

// newIssuerCommand is `trunkpass issuer`: the hosted issuer and the
// provisioning API over HTTP.
func newIssuerCommand() *cobra.Command {
	cfg := issuer.DefaultConfig()
	var configFile, logLevel string
	var logConsole bool
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "Run the hosted issuer and the provisioning API",
		Long: `Run the hosted issuer: customer credentials in, edge tokens out, plus the
provisioning API under /v1/admin.

Every configuration key can be set in the YAML file (--config), by the
environment (TRUNKPASS_<KEY>, e.g. TRUNKPASS_EDGE_AUDIENCE) or by the flag of
the same name. Secrets come from the environment or files only:
TRUNKPASS_ADMIN_TOKEN or admin_token_file, TRUNKPASS_MASTER_KEY or
master_key_file, TRUNKPASS_EPHEMERAL_SECRET or ephemeral.secret_file,
TRUNKPASS_TURN_SECRET or turn.secret_file. Without an admin token or master
key the issuer keeps generated ones in the data directory (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Load(&cfg, configFile, cmd.Flags(), "TRUNKPASS"); err != nil {
				return err
			}
			log := logging.New(cmd.ErrOrStderr(), logLevel, logConsole).With().Str("component", "issuer").Logger()
			if err := cfg.LoadSecrets(); err != nil {
				return err
			}
			created, err := cfg.GenerateSecrets()
			if err != nil {
				return err
			}
			for _, path := range created {
				log.Warn().Str("file", path).Msg("generated a secret and kept it in this file (mode 0600)")
			}
			iss, err := issuer.New(cfg, issuer.WithLogger(log))
			if err != nil {
				return err
			}
			defer iss.Close()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
			}
			srv := iss.Server()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			log.Info().Str("listen", ln.Addr().String()).Str("url", cfg.URL).Str("data", cfg.Data).
				Str("signing_alg", cfg.SigningAlg).Msg("issuer listening")
			select {
			case err := <-errc:
				return fmt.Errorf("serve: %w", err)
			case <-ctx.Done():
			}
			log.Info().Msg("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return iss.Close()
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().BoolVar(&logConsole, "log-console", false, "human-readable console logs instead of JSON")
	config.Bind(cmd.Flags(), cfg)
	return cmd
}
