package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/trunkpass/trunkpass/chain"
)

// execTrunkpass runs a fresh trunkpass command tree with the mint and
// token commands in process, feeding stdin, and returns what it printed.
func execTrunkpass(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "trunkpass", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newMintCmd(), newTokenCmd())
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// checkGolden compares got with testdata/name; with
// TRUNKPASS_UPDATE_GOLDEN=1 in the environment it rewrites the file.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("TRUNKPASS_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (TRUNKPASS_UPDATE_GOLDEN=1 writes it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// writeSecretFile writes content to a fresh file and returns its path.
func writeSecretFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	testIssuerURL      = "http://127.0.0.1:8080"
	testCustomerSecret = "customer-secret-0123456789abcdef"
)

func TestMintAssertionVerifiesWithTheIssuersVerifier(t *testing.T) {
	base := []string{"mint", "assertion", "--customer", "acme", "--secret-id", "s1", "--sub", "alice", "--aud", testIssuerURL}
	tests := []struct {
		name       string
		env        string
		fileSecret string // when set, --secret-file holds it
		args       []string
		wantAlg    string
		wantKid    bool
		wantLife   time.Duration
		wantTTL    time.Duration
		wantGrants *chain.SIPGrant
	}{
		{name: "defaults give an HS256 assertion with a kid living one minute",
			env: testCustomerSecret, wantAlg: "HS256", wantKid: true, wantLife: time.Minute},
		{name: "HS384 and a custom lifetime are honoured",
			env: testCustomerSecret, args: []string{"--alg", "HS384", "--ttl", "5m"}, wantAlg: "HS384", wantKid: true, wantLife: 5 * time.Minute},
		{name: "HS512 is accepted",
			env: testCustomerSecret, args: []string{"--alg", "HS512"}, wantAlg: "HS512", wantKid: true, wantLife: time.Minute},
		{name: "no kid leaves the issuer to try the customer's secrets",
			env: testCustomerSecret, args: []string{"--no-kid"}, wantAlg: "HS256", wantLife: time.Minute},
		{name: "grants and token ttl are carried as claims",
			env:     testCustomerSecret,
			args:    []string{"--grants", `{"methods":["REGISTER"],"dial":{"allow":["+44*"]}}`, "--token-ttl", "300s"},
			wantAlg: "HS256", wantKid: true, wantLife: time.Minute, wantTTL: 300 * time.Second,
			wantGrants: &chain.SIPGrant{Methods: []string{"REGISTER"}, Dial: &chain.DialRules{Allow: []string{"+44*"}}}},
		{name: "the secret is read from a file without its trailing newline",
			fileSecret: testCustomerSecret + "\n", wantAlg: "HS256", wantKid: true, wantLife: time.Minute},
		{name: "a secret file wins over the environment",
			env: "some other secret", fileSecret: testCustomerSecret, wantAlg: "HS256", wantKid: true, wantLife: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envCustomerSecret, tt.env)
			args := append(append([]string{}, base...), tt.args...)
			if tt.fileSecret != "" {
				args = append(args, "--secret-file", writeSecretFile(t, tt.fileSecret))
			}
			out, _, err := execTrunkpass(t, "", args...)
			if err != nil {
				t.Fatalf("mint assertion: %v", err)
			}
			token := strings.TrimSuffix(out, "\n")
			if strings.ContainsAny(token, " \n") {
				t.Fatalf("output is not one token: %q", out)
			}

			parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed.Method.Alg(); got != tt.wantAlg {
				t.Errorf("alg %s, want %s", got, tt.wantAlg)
			}
			if _, hasKid := parsed.Header["kid"]; hasKid != tt.wantKid {
				t.Errorf("kid header present %v, want %v", hasKid, tt.wantKid)
			}

			v := &chain.AssertionVerifier{
				Keys:     chain.StaticKeyring{{ID: "s1", Customer: "acme", Value: []byte(testCustomerSecret)}},
				Audience: testIssuerURL,
			}
			a, err := v.Verify(token)
			if err != nil {
				t.Fatalf("issuer's verifier refused the assertion: %v", err)
			}
			if a.Customer != "acme" || a.Subject != "alice" || a.SecretID != "s1" {
				t.Errorf("assertion of %q/%q by secret %q, want acme/alice by s1", a.Customer, a.Subject, a.SecretID)
			}
			if life := a.ExpiresAt.Sub(a.IssuedAt); life != tt.wantLife {
				t.Errorf("lifetime %s, want %s", life, tt.wantLife)
			}
			if a.TTL != tt.wantTTL {
				t.Errorf("ttl %s, want %s", a.TTL, tt.wantTTL)
			}
			if !reflect.DeepEqual(a.Grants, tt.wantGrants) {
				t.Errorf("grants %+v, want %+v", a.Grants, tt.wantGrants)
			}
			if jti, err := base64.RawURLEncoding.DecodeString(a.JTI); err != nil || len(jti) != 16 {
				t.Errorf("jti %q is not base64url of 16 bytes", a.JTI)
			}
		})
	}
}

func TestMintAssertionGivesEachAssertionItsOwnJTI(t *testing.T) {
	t.Setenv(envCustomerSecret, testCustomerSecret)
	seen := map[string]bool{}
	for range 3 {
		out, _, err := execTrunkpass(t, "", "mint", "assertion", "--customer", "acme", "--secret-id", "s1", "--sub", "alice", "--aud", testIssuerURL)
		if err != nil {
			t.Fatal(err)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimSpace(out), claims); err != nil {
			t.Fatal(err)
		}
		jti, _ := claims["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %q minted twice", jti)
		}
		seen[jti] = true
	}
}

func TestMintAssertionRefusesBadInput(t *testing.T) {
	base := []string{"mint", "assertion", "--customer", "acme", "--sub", "alice", "--aud", testIssuerURL}
	tests := []struct {
		name      string
		env       string
		args      []string
		wantErr   error  // matched with errors.Is when set
		wantInErr string // substring of the error message when set
	}{
		{name: "no secret in the environment and no file is refused",
			args: []string{"--secret-id", "s1"}, wantErr: errNoSecret, wantInErr: envCustomerSecret},
		{name: "a secret file that does not exist is refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--secret-file", "/nonexistent/secret"}, wantErr: os.ErrNotExist},
		{name: "a lifetime over five minutes is refused because issuers refuse it",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--ttl", "6m"}, wantInErr: "longer than 5m0s"},
		{name: "a zero lifetime is refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--ttl", "0s"}, wantInErr: "must be positive"},
		{name: "an algorithm other than HS256/384/512 is refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--alg", "none"}, wantErr: chain.ErrAlgorithm},
		{name: "an asymmetric algorithm is refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--alg", "RS256"}, wantErr: chain.ErrAlgorithm},
		{name: "grants that are not JSON are refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--grants", "{methods"}, wantInErr: "--grants"},
		{name: "grants with an unknown field are refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--grants", `{"method":["INVITE"]}`}, wantInErr: "unknown field"},
		{name: "grants with trailing data are refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--grants", `{"methods":["INVITE"]} {}`}, wantInErr: "trailing data"},
		{name: "grants a verifier would reject are refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--grants", `{"methods":["invite"]}`}, wantErr: chain.ErrMalformed},
		{name: "a token ttl that is not whole seconds is refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--token-ttl", "1500ms"}, wantInErr: "whole seconds"},
		{name: "a missing secret id without --no-kid is refused",
			env: testCustomerSecret, wantInErr: "--secret-id is required"},
		{name: "a missing subject is refused",
			env: testCustomerSecret, args: []string{"--secret-id", "s1", "--sub", ""}, wantInErr: "sub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envCustomerSecret, tt.env)
			args := append(append([]string{}, base...), tt.args...)
			out, _, err := execTrunkpass(t, "", args...)
			if err == nil {
				t.Fatalf("mint assertion succeeded: %q", out)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
			if tt.env != "" && strings.Contains(err.Error(), tt.env) {
				t.Errorf("error %q contains the secret", err)
			}
			if out != "" {
				t.Errorf("printed %q on failure", out)
			}
		})
	}
}

func TestMintEphemeralKnownAnswer(t *testing.T) {
	t.Run("the secret from the environment gives the golden credential", func(t *testing.T) {
		t.Setenv(envEphemeralSecret, "s3cret")
		out, _, err := execTrunkpass(t, "", "mint", "ephemeral", "--user", "alice", "--at", "1767225600")
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "ephemeral_alice.golden", out)
		var got ephemeralOutput
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if got.Password != "+CKIbET1K2zFrSOk2S33FcZCpuI=" {
			t.Errorf("password %q, want the known answer", got.Password)
		}
	})
	t.Run("the same secret from a file gives the same credential", func(t *testing.T) {
		t.Setenv(envEphemeralSecret, "")
		out, _, err := execTrunkpass(t, "", "mint", "ephemeral", "--user", "alice", "--at", "1767225600",
			"--secret-file", writeSecretFile(t, "s3cret\n"))
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "ephemeral_alice.golden", out)
	})
}

func TestMintEphemeralVerifiesWithTheEdgesVerifier(t *testing.T) {
	const secret = "shared-digest-secret"
	tests := []struct {
		name         string
		args         []string
		format       chain.EphemeralFormat
		wantUsername string
	}{
		{name: "the default is expiry first with SHA-1",
			args: []string{"--user", "alice", "--at", "1767225600"}, wantUsername: "1767225600:alice"},
		{name: "user first puts the user before the expiry",
			args:   []string{"--user", "alice", "--at", "1767225600", "--user-first"},
			format: chain.EphemeralFormat{UserFirst: true}, wantUsername: "alice:1767225600"},
		{name: "another separator is used between expiry and user",
			args:   []string{"--user", "alice@acme.example", "--at", "1767225600", "--separator", "/"},
			format: chain.EphemeralFormat{Separator: '/'}, wantUsername: "1767225600/alice@acme.example"},
		{name: "SHA-512 is used when asked for",
			args:   []string{"--user", "bob", "--at", "1767225600", "--hash", "sha512"},
			format: chain.EphemeralFormat{Hash: chain.SHA512}, wantUsername: "1767225600:bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envEphemeralSecret, secret)
			out, _, err := execTrunkpass(t, "", append([]string{"mint", "ephemeral"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got ephemeralOutput
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if got.Username != tt.wantUsername || got.ExpiresAt != 1767225600 {
				t.Errorf("username %q expiring %d, want %q expiring 1767225600", got.Username, got.ExpiresAt, tt.wantUsername)
			}
			v := &chain.EphemeralVerifier{
				Format:  tt.format,
				Secrets: [][]byte{[]byte(secret)},
				Now:     func() time.Time { return time.Unix(1767225600-60, 0) },
			}
			if _, err := v.Check(got.Username, got.Password); err != nil {
				t.Errorf("edge's verifier refused the credential: %v", err)
			}
		})
	}
}

func TestMintEphemeralExpiresAfterTheTTL(t *testing.T) {
	t.Setenv(envEphemeralSecret, "s3cret")
	before := time.Now().Add(2 * time.Hour).Unix()
	out, _, err := execTrunkpass(t, "", "mint", "ephemeral", "--user", "alice", "--ttl", "2h")
	after := time.Now().Add(2 * time.Hour).Unix()
	if err != nil {
		t.Fatal(err)
	}
	var got ephemeralOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.ExpiresAt < before || got.ExpiresAt > after {
		t.Errorf("expires_at %d outside [%d, %d]", got.ExpiresAt, before, after)
	}
	if !strings.HasPrefix(got.Username, strconv.FormatInt(got.ExpiresAt, 10)+":alice") {
		t.Errorf("username %q does not start with expires_at", got.Username)
	}
}

func TestMintEphemeralRefusesBadInput(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		args      []string
		wantErr   error
		wantInErr string
	}{
		{name: "no secret in the environment and no file is refused",
			args: []string{"--user", "alice"}, wantErr: errNoSecret, wantInErr: envEphemeralSecret},
		{name: "an empty secret file is refused",
			args: []string{"--user", "alice", "--secret-file", "EMPTY"}, wantInErr: "empty"},
		{name: "an unknown hash is refused",
			env: "s3cret", args: []string{"--user", "alice", "--hash", "md5"}, wantErr: chain.ErrAlgorithm},
		{name: "a separator of two characters is refused",
			env: "s3cret", args: []string{"--user", "alice", "--separator", "::"}, wantInErr: "--separator"},
		{name: "a digit as separator is refused",
			env: "s3cret", args: []string{"--user", "alice", "--separator", "1"}, wantInErr: "--separator"},
		{name: "a missing user is refused",
			env: "s3cret", args: []string{"--at", "1767225600"}, wantInErr: "user"},
		{name: "both --at and --ttl are refused",
			env: "s3cret", args: []string{"--user", "alice", "--at", "1767225600", "--ttl", "1h"}, wantInErr: "at"},
		{name: "a negative lifetime is refused",
			env: "s3cret", args: []string{"--user", "alice", "--ttl", "-1h"}, wantInErr: "--ttl"},
		{name: "a non-positive expiry is refused",
			env: "s3cret", args: []string{"--user", "alice", "--at", "0"}, wantInErr: "--at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envEphemeralSecret, tt.env)
			args := append([]string{"mint", "ephemeral"}, tt.args...)
			for i, a := range args {
				if a == "EMPTY" {
					args[i] = writeSecretFile(t, "\n")
				}
			}
			out, _, err := execTrunkpass(t, "", args...)
			if err == nil {
				t.Fatalf("mint ephemeral succeeded: %q", out)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
		})
	}
}
