package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/config"
)

// Environment variables the mint commands read their secrets from. Secrets
// never come from flag values: those show in ps.
const (
	envCustomerSecret  = "TRUNKPASS_CUSTOMER_SECRET"
	envEphemeralSecret = "TRUNKPASS_EPHEMERAL_SECRET"
)

// errNoSecret is returned when neither the environment nor --secret-file
// provides a secret.
var errNoSecret = errors.New("no secret")

func init() { rootCmd.AddCommand(newMintCmd()) }

// newMintCmd builds "trunkpass mint" and its subcommands.
func newMintCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mint",
		Short: "Mint credentials as a customer backend would, for trying things out",
	}
	cmd.AddCommand(newMintAssertionCmd(), newMintEphemeralCmd())
	return cmd
}

// mintSecret reads a secret from file when one is named, else from the
// environment variable env. Errors never contain the secret.
func mintSecret(env, file string) ([]byte, error) {
	if file != "" {
		env = ""
	}
	s, err := config.Secret(env, file)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("%w: set %s or --secret-file", errNoSecret, env)
	}
	return s, nil
}

// mintAssertionOptions are the flags of "mint assertion".
type mintAssertionOptions struct {
	customer, secretID, sub, aud string
	ttl, tokenTTL                time.Duration
	alg                          string
	noKid                        bool
	grants                       string
	secretFile                   string
}

func newMintAssertionCmd() *cobra.Command {
	var o mintAssertionOptions
	cmd := &cobra.Command{
		Use:   "assertion --customer ID --secret-id SID --sub USER --aud ISSUER_URL",
		Short: "Mint a customer assertion (an HS256/384/512 JWT) and print it",
		Long: `Mint a customer assertion, the JWT a customer backend hands a visitor's
browser to exchange at the issuer, and print it.

The secret is read from --secret-file, or else from the environment variable
` + envCustomerSecret + `; never from a flag value.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := o.mint(time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.customer, "customer", "", "customer id (the iss claim)")
	f.StringVar(&o.secretID, "secret-id", "", "id of the secret (the kid header)")
	f.StringVar(&o.sub, "sub", "", "visitor's user name (the sub claim)")
	f.StringVar(&o.aud, "aud", "", "issuer URL (the aud claim)")
	f.DurationVar(&o.ttl, "ttl", time.Minute, "assertion lifetime, at most "+chain.DefaultAssertionLifetime.String())
	f.StringVar(&o.alg, "alg", "HS256", "HMAC algorithm: HS256, HS384 or HS512")
	f.BoolVar(&o.noKid, "no-kid", false, "omit the kid header (the issuer then tries each of the customer's secrets)")
	f.StringVar(&o.grants, "grants", "", `grant request narrowing the customer's policy, JSON (e.g. {"methods":["REGISTER"]})`)
	f.DurationVar(&o.tokenTTL, "token-ttl", 0, "ask for a shorter edge-token lifetime, whole seconds (0: the issuer's default)")
	f.StringVar(&o.secretFile, "secret-file", "", "file holding the customer secret (else $"+envCustomerSecret+")")
	for _, name := range []string{"customer", "sub", "aud"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// mint checks the options and signs an assertion issued at now.
func (o *mintAssertionOptions) mint(now time.Time) (string, error) {
	for _, f := range []struct{ name, value string }{{"customer", o.customer}, {"sub", o.sub}, {"aud", o.aud}} {
		if f.value == "" {
			return "", fmt.Errorf("mint assertion: --%s must not be empty", f.name)
		}
	}
	if o.secretID == "" && !o.noKid {
		return "", errors.New("mint assertion: --secret-id is required unless --no-kid")
	}
	if o.ttl <= 0 {
		return "", fmt.Errorf("mint assertion: --ttl %s must be positive", o.ttl)
	}
	if o.ttl > chain.DefaultAssertionLifetime {
		return "", fmt.Errorf("mint assertion: --ttl %s is longer than %s, which issuers refuse by default",
			o.ttl, chain.DefaultAssertionLifetime)
	}
	if o.tokenTTL < 0 || o.tokenTTL%time.Second != 0 {
		return "", fmt.Errorf("mint assertion: --token-ttl %s must be a positive number of whole seconds", o.tokenTTL)
	}
	var grants *chain.SIPGrant
	if o.grants != "" {
		grants = new(chain.SIPGrant)
		dec := json.NewDecoder(bytes.NewReader([]byte(o.grants)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(grants); err != nil {
			return "", fmt.Errorf("mint assertion: --grants: %w", err)
		}
		if dec.More() {
			return "", errors.New("mint assertion: --grants: trailing data after the JSON object")
		}
		if err := grants.Validate(); err != nil {
			return "", fmt.Errorf("mint assertion: --grants: %w", err)
		}
	}
	value, err := mintSecret(envCustomerSecret, o.secretFile)
	if err != nil {
		return "", fmt.Errorf("mint assertion: customer secret: %w", err)
	}
	jti, err := randomJTI(rand.Reader)
	if err != nil {
		return "", err
	}
	now = now.Truncate(time.Second)
	claims := &chain.AssertionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    o.customer,
			Subject:   o.sub,
			Audience:  jwt.ClaimStrings{o.aud},
			ID:        jti,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(o.ttl)),
		},
		Grants: grants,
		TTL:    int64(o.tokenTTL / time.Second),
	}
	secret := chain.Secret{ID: o.secretID, Customer: o.customer, Value: value}
	token, err := chain.MintAssertion(secret, claims, o.alg, o.noKid)
	if err != nil {
		return "", fmt.Errorf("mint assertion: %w", err)
	}
	return token, nil
}

// randomJTI returns 16 random bytes, base64url without padding.
func randomJTI(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// mintEphemeralOptions are the flags of "mint ephemeral".
type mintEphemeralOptions struct {
	user       string
	ttl        time.Duration
	at         int64
	hash       string
	userFirst  bool
	separator  string
	secretFile string
}

// ephemeralOutput is what "mint ephemeral" prints: the shape of the
// issuer's "ephemeral" response object.
type ephemeralOutput struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	ExpiresAt int64  `json:"expires_at"`
}

func newMintEphemeralCmd() *cobra.Command {
	var o mintEphemeralOptions
	cmd := &cobra.Command{
		Use:   "ephemeral --user USER",
		Short: "Mint an ephemeral Digest/TURN credential (expiry:user + base64 HMAC) and print it as JSON",
		Long: `Mint an ephemeral credential as Kamailio auth_ephemeral and coturn's
use-auth-secret expect: username "<expiry>:<user>", password the standard
base64 of HMAC-SHA1(secret, username). Prints
{"username", "password", "expires_at"}.

The secret is read from --secret-file, or else from the environment variable
` + envEphemeralSecret + `; never from a flag value. --at fixes the expiry
(Unix seconds) for reproducible output.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := o.mint(cmd.Flags().Changed("at"), time.Now())
			if err != nil {
				return err
			}
			return writeJSONOut(cmd.OutOrStdout(), out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "user name (the part after the expiry)")
	f.DurationVar(&o.ttl, "ttl", time.Hour, "lifetime from now")
	f.Int64Var(&o.at, "at", 0, "expiry as Unix seconds, instead of now + --ttl")
	f.StringVar(&o.hash, "hash", "sha1", "HMAC hash: sha1, sha256, sha384 or sha512")
	f.BoolVar(&o.userFirst, "user-first", false, `lay the username out as "<user>:<expiry>"`)
	f.StringVar(&o.separator, "separator", ":", "one character between expiry and user")
	f.StringVar(&o.secretFile, "secret-file", "", "file holding the shared secret (else $"+envEphemeralSecret+")")
	_ = cmd.MarkFlagRequired("user")
	cmd.MarkFlagsMutuallyExclusive("at", "ttl")
	return cmd
}

// mint checks the options and derives the credential; the expiry is --at
// when fixed, else now + --ttl.
func (o *mintEphemeralOptions) mint(fixed bool, now time.Time) (ephemeralOutput, error) {
	hash, err := chain.ParseHash(o.hash)
	if err != nil {
		return ephemeralOutput{}, fmt.Errorf("mint ephemeral: --hash: %w", err)
	}
	if len(o.separator) != 1 || o.separator[0] >= '0' && o.separator[0] <= '9' || o.separator[0] < 0x21 || o.separator[0] > 0x7e {
		return ephemeralOutput{}, fmt.Errorf("mint ephemeral: --separator %q must be one printable non-digit ASCII character", o.separator)
	}
	if o.user == "" {
		return ephemeralOutput{}, errors.New("mint ephemeral: --user must not be empty")
	}
	expiry := time.Unix(o.at, 0)
	if !fixed {
		if o.ttl < time.Second {
			return ephemeralOutput{}, fmt.Errorf("mint ephemeral: --ttl %s must be at least 1s", o.ttl)
		}
		expiry = now.Add(o.ttl).Truncate(time.Second)
	} else if o.at <= 0 {
		return ephemeralOutput{}, fmt.Errorf("mint ephemeral: --at %d must be a positive Unix time", o.at)
	}
	secret, err := mintSecret(envEphemeralSecret, o.secretFile)
	if err != nil {
		return ephemeralOutput{}, fmt.Errorf("mint ephemeral: shared secret: %w", err)
	}
	format := chain.EphemeralFormat{UserFirst: o.userFirst, Separator: o.separator[0], Hash: hash}
	username, password, err := chain.MintEphemeral(secret, o.user, expiry, format)
	if err != nil {
		return ephemeralOutput{}, err
	}
	return ephemeralOutput{Username: username, Password: password, ExpiresAt: expiry.Unix()}, nil
}

// writeJSONOut prints v as indented JSON followed by a newline.
func writeJSONOut(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
