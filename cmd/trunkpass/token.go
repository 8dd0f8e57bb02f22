package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trunkpass/trunkpass/chain"
)

// Limits of the token commands.
const (
	// tokenMaxInput bounds a token read from an argument or stdin.
	tokenMaxInput = 64 << 10
	// jwksMaxSize bounds a JWKS document, fetched or read from a file.
	jwksMaxSize = 1 << 20
	// jwksFetchTimeout bounds fetching a JWKS over HTTP.
	jwksFetchTimeout = 5 * time.Second
)

// notVerifiedWarning is written to stderr by "token inspect".
const notVerifiedWarning = "NOT VERIFIED: decoded only; neither the signature nor the claims were checked"

func init() { rootCmd.AddCommand(newTokenCmd()) }

// newTokenCmd builds "trunkpass token" and its subcommands.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Inspect and verify edge tokens and customer assertions",
	}
	cmd.AddCommand(newTokenInspectCmd(), newTokenVerifyCmd())
	return cmd
}

// tokenReport is what the token commands print.
type tokenReport struct {
	// Verified is false for "inspect", true for a token "verify" accepted.
	Verified bool `json:"verified"`
	// Kind guesses from the algorithm what the token is.
	Kind   string         `json:"kind,omitempty"`
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
	// Times shows the numeric time claims (exp, iat, nbf, auth_time) in
	// RFC 3339, UTC.
	Times map[string]string `json:"times,omitempty"`
}

func newTokenInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect [TOKEN|-]",
		Short: "Decode a JWT's header and claims WITHOUT verifying it",
		Long: `Decode the header and claims of a JWT (an edge token or a customer
assertion) and print them as JSON, with time claims also in RFC 3339.
Nothing is verified: the output says "verified": false and a warning goes to
stderr. The token is read from stdin when the argument is "-" or absent.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := readTokenInput(cmd, args)
			if err != nil {
				return fmt.Errorf("token inspect: %w", err)
			}
			report, err := decodeToken(token)
			if err != nil {
				return fmt.Errorf("token inspect: %w", err)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), notVerifiedWarning)
			return writeJSONOut(cmd.OutOrStdout(), report)
		},
	}
}

// tokenVerifyOptions are the flags of "token verify".
type tokenVerifyOptions struct {
	jwks, iss, aud string
	maxAge         time.Duration
}

func newTokenVerifyCmd() *cobra.Command {
	var o tokenVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify --jwks URL|FILE --iss ISSUER --aud AUDIENCE [TOKEN|-]",
		Short: "Verify an edge token against a JWKS and print its claims",
		Long: `Verify an edge token as the SIP edge does: signature against the JWKS
(fetched from an http(s) URL or read from a file), the algorithm pinned per
key, iss, aud, exp, nbf, iat, the lifetime against --max-age, and the grant.
Prints the claims and exits 0 when valid; prints the reason and exits
non-zero otherwise. The token is read from stdin when the argument is "-" or
absent.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := readTokenInput(cmd, args)
			if err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			if o.maxAge < 0 {
				return fmt.Errorf("token verify: --max-age %s must not be negative", o.maxAge)
			}
			doc, err := loadJWKS(cmd.Context(), o.jwks)
			if err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			keys, err := chain.ParseJWKS(doc)
			if err != nil {
				return fmt.Errorf("token verify: jwks %s: %w", o.jwks, err)
			}
			v := &chain.EdgeVerifier{Keys: keys, Issuer: o.iss, Audience: o.aud, MaxAge: o.maxAge}
			if _, err := v.Verify(token); err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			report, err := decodeToken(token)
			if err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			report.Verified = true
			return writeJSONOut(cmd.OutOrStdout(), report)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.jwks, "jwks", "", "JWKS: an http(s) URL or a file")
	f.StringVar(&o.iss, "iss", "", "expected issuer (the issuer URL)")
	f.StringVar(&o.aud, "aud", "", "expected audience (e.g. sip:trunk.example.net)")
	f.DurationVar(&o.maxAge, "max-age", time.Hour, "refuse tokens whose exp - iat is longer (0: no bound)")
	for _, name := range []string{"jwks", "iss", "aud"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// readTokenInput returns the token named by args, or read from stdin when
// args is empty or "-". Surrounding blanks and a "Bearer " prefix are
// removed.
func readTokenInput(cmd *cobra.Command, args []string) (string, error) {
	var raw string
	if len(args) == 1 && args[0] != "-" {
		raw = args[0]
	} else {
		if len(args) == 0 && stdinIsTerminal(cmd.InOrStdin()) {
			return "", fmt.Errorf("no token given: pass TOKEN, pipe it in, or use - to type it: %w", chain.ErrMalformed)
		}
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), tokenMaxInput+1))
		if err != nil {
			return "", fmt.Errorf("read token from stdin: %w", err)
		}
		raw = string(b)
	}
	if len(raw) > tokenMaxInput {
		return "", fmt.Errorf("token longer than %d bytes: %w", tokenMaxInput, chain.ErrTooLarge)
	}
	token := strings.TrimSpace(raw)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	if token == "" {
		return "", fmt.Errorf("no token given: %w", chain.ErrMalformed)
	}
	return token, nil
}

// stdinIsTerminal reports whether r is a character device such as an
// interactive terminal, where waiting for a token would look like a hang.
func stdinIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// decodeToken decodes a compact JWS without verifying anything.
func decodeToken(token string) (*tokenReport, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("a JWT has 3 dot-separated parts, this has %d: %w", len(parts), chain.ErrMalformed)
	}
	header, err := decodeTokenPart("header", parts[0])
	if err != nil {
		return nil, err
	}
	claims, err := decodeTokenPart("claims", parts[1])
	if err != nil {
		return nil, err
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || parts[2] == "" {
		return nil, fmt.Errorf("signature is not base64url: %w", chain.ErrMalformed)
	}
	r := &tokenReport{Header: header, Claims: claims, Times: map[string]string{}}
	alg, _ := header["alg"].(string)
	switch {
	case slices.Contains(chain.AssertionAlgorithms, alg):
		r.Kind = "customer assertion"
	case slices.Contains(chain.EdgeAlgorithms, alg):
		r.Kind = "edge token"
	}
	for _, name := range []string{"exp", "iat", "nbf", "auth_time"} {
		n, ok := claims[name].(json.Number)
		if !ok {
			continue
		}
		if t, ok := numericTime(n); ok {
			r.Times[name] = t
		}
	}
	return r, nil
}

// decodeTokenPart decodes one base64url JSON object of a JWT, keeping
// numbers exact.
func decodeTokenPart(name, part string) (map[string]any, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64url: %w", name, chain.ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("%s is not a JSON object: %w", name, chain.ErrMalformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s has data after its JSON object: %w", name, chain.ErrMalformed)
	}
	return m, nil
}

// numericTime formats a NumericDate (seconds since the epoch, possibly
// fractional) in RFC 3339, UTC.
func numericTime(n json.Number) (string, bool) {
	if sec, err := n.Int64(); err == nil {
		return time.Unix(sec, 0).UTC().Format(time.RFC3339), true
	}
	f, err := n.Float64()
	if err != nil || f < -1e11 || f > 1e11 {
		return "", false
	}
	sec := int64(f)
	nsec := int64((f - float64(sec)) * 1e9)
	return time.Unix(sec, nsec).UTC().Format(time.RFC3339Nano), true
}

// loadJWKS fetches a JWKS from an http(s) URL or reads it from a file, at
// most jwksMaxSize bytes.
func loadJWKS(ctx context.Context, src string) ([]byte, error) {
	var r io.Reader
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("jwks url %s: %w", src, err)
		}
		req.Header.Set("Accept", "application/json")
		client := &http.Client{Timeout: jwksFetchTimeout}
		res, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch jwks: %w", err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch jwks %s: status %s", src, res.Status)
		}
		r = res.Body
	} else {
		f, err := os.Open(src)
		if err != nil {
			return nil, fmt.Errorf("read jwks: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, jwksMaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks %s: %w", src, err)
	}
	if len(b) > jwksMaxSize {
		return nil, fmt.Errorf("jwks %s is larger than %d bytes: %w", src, jwksMaxSize, chain.ErrTooLarge)
	}
	return b, nil
}
