// Command customer-site runs the example customer website on its own: the
// backend that holds a customer secret and the JsSIP pages.
//
//	TRUNKPASS_CUSTOMER_SECRET=… customer-site --customer demo --secret-id s1 \
//	    --issuer http://127.0.0.1:8080 --listen 127.0.0.1:8081
//
// The secret comes from TRUNKPASS_CUSTOMER_SECRET or --secret-file, never
// from a flag (flags show in ps), and is never logged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	customersite "github.com/trunkpass/trunkpass/examples/customer-site"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "customer-site:", err)
		os.Exit(1)
	}
}

func run() error {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	listen := flag.String("listen", env("TRUNKPASS_SITE_LISTEN", "127.0.0.1:8081"), "address to serve the site on")
	issuer := flag.String("issuer", env("TRUNKPASS_ISSUER_URL", "http://127.0.0.1:8080"), "issuer URL (aud of assertions)")
	customer := flag.String("customer", env("TRUNKPASS_CUSTOMER", "demo"), "customer id (iss of assertions)")
	secretID := flag.String("secret-id", env("TRUNKPASS_CUSTOMER_SECRET_ID", ""), "id of the customer secret (kid of assertions)")
	secretFile := flag.String("secret-file", "", "file holding the customer secret (else TRUNKPASS_CUSTOMER_SECRET)")
	echoURI := flag.String("echo-uri", env("TRUNKPASS_ECHO_URI", ""), "SIP URI the Call echo button dials (default sip:echo@<realm>)")
	jssip := flag.String("jssip", customersite.DefaultJSSIPPath, "JsSIP bundle built by `npm run build:jssip`")
	flag.Parse()

	secret := os.Getenv("TRUNKPASS_CUSTOMER_SECRET")
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("read secret file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	if secret == "" {
		return errors.New("no customer secret: set TRUNKPASS_CUSTOMER_SECRET or --secret-file")
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	site, err := customersite.New(customersite.Options{
		CustomerID: *customer,
		SecretID:   *secretID,
		Secret:     []byte(secret),
		IssuerURL:  *issuer,
		EchoURI:    *echoURI,
		JSSIPPath:  *jssip,
		Logger:     log,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: *listen, Handler: site, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Info("customer site listening", "url", "http://"+*listen, "issuer", *issuer, "customer", *customer)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
