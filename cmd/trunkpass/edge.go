package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/trunkpass/trunkpass/internal/config"
	"github.com/trunkpass/trunkpass/verifier"
)

func init() { rootCmd.AddCommand(newEdgeCmd()) }

func newEdgeCmd() *cobra.Command {
	defaults := verifier.DefaultConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run the SIP verifier edge",
		Long: `Run the SIP verifier edge: authenticate SIP requests (Bearer edge tokens
checked against the issuer's JWKS, RFC 7662 introspection, HS profiles,
Digest with ephemeral credentials), register visitors and proxy their calls
to the trunk. Secrets come from TRUNKPASS_EPHEMERAL_SECRET and
TRUNKPASS_INTROSPECTION_CLIENT_SECRET or the files the configuration names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := verifier.DefaultConfig()
			if err := config.Load(&cfg, configFile, cmd.Flags(), "TRUNKPASS"); err != nil {
				return err
			}
			if err := cfg.LoadSecrets(); err != nil {
				return err
			}
			log := newEdgeLogger(cfg.LogLevel)
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			edge, err := verifier.New(cfg, verifier.WithLogger(log), verifier.WithRegistry(reg))
			if err != nil {
				return err
			}
			defer edge.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cfg.Metrics != "" {
				mux := http.NewServeMux()
				mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
				hs := &http.Server{Addr: cfg.Metrics, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				go func() {
					if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error().Err(err).Msg("metrics listener")
					}
				}()
				defer hs.Close()
				log.Info().Str("metrics", "http://"+cfg.Metrics+"/metrics").Msg("metrics listening")
			}
			if err := edge.Listen(); err != nil {
				return err
			}
			for _, a := range edge.Addrs() {
				fmt.Fprintln(cmd.OutOrStdout(), "edge listening on", a)
			}
			return edge.Serve(ctx)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file (SPEC §5 edge.yaml)")
	config.Bind(cmd.Flags(), &defaults)
	return cmd
}

// newEdgeLogger makes a zerolog logger: console output on a terminal,
// JSON otherwise.
func newEdgeLogger(level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	var log zerolog.Logger
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(lvl).With().Timestamp().Str("service", "edge").Logger()
}
