package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/internal/testpeer"
	"github.com/trunkpass/trunkpass/issuer"
)

// registerDigest REGISTERs user through Kamailio once with SIPp
// (examples/sipp/register_digest.xml) answering the Digest challenge with
// username and password.
func registerDigest(t *testing.T, k *testpeer.Kamailio, user, username, password string) (testpeer.SIPpCalls, string, error) {
	t.Helper()
	stdout, stderr, err := testpeer.RunSIPp(t, k.Addr,
		"-sf", testpeer.SIPpScenario(t, "register_digest.xml"),
		"-i", "127.0.0.1", "-p", fmt.Sprint(testpeer.FreePort(t, "udp")),
		"-s", user, "-au", username, "-ap", password,
		"-m", "1", "-timeout", "15s", "-timeout_error")
	calls, perr := testpeer.ParseSIPpCalls(stdout)
	if perr != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", perr, testpeer.Tail(stdout, 3000), stderr)
	}
	return calls, stdout + stderr, err
}

// TestLegacyCredentialsRegisterThroughKamailio checks that the Digest
// ephemeral credentials of a /v1/token response register through an
// unmodified Kamailio with auth_ephemeral sharing the issuer's secret.
func TestLegacyCredentialsRegisterThroughKamailio(t *testing.T) {
	testpeer.RequireSIPp(t)
	const secret = "e2e-ephemeral-secret"
	ttl := 5 * time.Minute
	r := startIssuer(t, func(c *issuer.Config) {
		c.EphemeralSecret = []byte(secret)
		c.Ephemeral.Hash = "sha1"
		c.TokenTTL = ttl
	})
	k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Secrets: []string{secret}, SHA: "sha1"})

	// The ephemeral username is "<expiry>:<user>@<customer domain>", and
	// Kamailio's autheph_check_to() compares that user@domain with the To
	// URI. register_digest.xml puts [remote_ip] (Kamailio's address) in To,
	// so the customer's domain is 127.0.0.1: then the unmodified scenario
	// is exactly what a phone configured with "127.0.0.1" as its domain
	// sends.
	c := r.provision(t, "local", "127.0.0.1", nil)
	before := time.Now()
	tr := r.token(t, c, "alice")
	after := time.Now()
	eph := tr.Ephemeral
	if eph == nil {
		t.Fatal("no ephemeral credentials in the token response")
	}

	t.Run("the username is expiry, user and customer domain, within the token lifetime", func(t *testing.T) {
		exp, user, ok := strings.Cut(eph.Username, ":")
		if !ok || user != "alice@127.0.0.1" {
			t.Fatalf("ephemeral username %q, want <expiry>:alice@127.0.0.1", eph.Username)
		}
		expiry, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			t.Fatalf("ephemeral username %q: expiry: %v", eph.Username, err)
		}
		if expiry != eph.ExpiresAt {
			t.Errorf("username expiry %d, expires_at %d", expiry, eph.ExpiresAt)
		}
		if limit := after.Add(ttl).Unix(); expiry > limit {
			t.Errorf("expiry %d is after now + token_ttl (%d)", expiry, limit)
		}
		if floor := before.Truncate(time.Second).Add(ttl).Unix(); expiry < floor {
			t.Errorf("expiry %d is before the token's expiry (%d)", expiry, floor)
		}
		if got, want := tr.ExpiresIn, int64(ttl/time.Second); got != want {
			t.Errorf("expires_in %d, want %d", got, want)
		}
	})

	t.Run("the issued credential registers", func(t *testing.T) {
		calls, out, err := registerDigest(t, k, "alice", eph.Username, eph.Password)
		if err != nil || calls.Successful != 1 || calls.Failed != 0 {
			t.Fatalf("REGISTER with the issued credential: %+v, %v\n%s", calls, err, testpeer.Tail(out, 3000))
		}
	})

	t.Run("a tampered password is refused", func(t *testing.T) {
		pw := []byte(eph.Password)
		if pw[0] == 'A' {
			pw[0] = 'B'
		} else {
			pw[0] = 'A'
		}
		calls, out, err := registerDigest(t, k, "alice", eph.Username, string(pw))
		if err == nil || calls.Successful != 0 || calls.Failed != 1 {
			t.Fatalf("REGISTER with a tampered password accepted: %+v, %v\n%s", calls, err, testpeer.Tail(out, 3000))
		}
	})

	t.Run("a credential for another user is refused for alice", func(t *testing.T) {
		bob := r.token(t, c, "bob").Ephemeral
		calls, out, err := registerDigest(t, k, "alice", bob.Username, bob.Password)
		if err == nil || calls.Successful != 0 || calls.Failed != 1 {
			t.Fatalf("bob's credential registered alice: %+v, %v\n%s", calls, err, testpeer.Tail(out, 3000))
		}
	})

	t.Run("a credential for another customer domain is refused", func(t *testing.T) {
		other := r.provision(t, "other", "other.trunk.test", nil)
		eph := r.token(t, other, "alice").Ephemeral
		calls, out, err := registerDigest(t, k, "alice", eph.Username, eph.Password)
		if err == nil || calls.Successful != 0 || calls.Failed != 1 {
			t.Fatalf("a credential for alice@other.trunk.test registered alice@127.0.0.1: %+v, %v\n%s", calls, err, testpeer.Tail(out, 3000))
		}
	})
}
