package chain_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// TestEphemeralAcceptedByKamailio registers through a real Kamailio
// auth_ephemeral with credentials minted by chain.MintEphemeral.
func TestEphemeralAcceptedByKamailio(t *testing.T) {
	testpeer.RequireSIPp(t)
	testpeer.Require(t, "kamailio", "apt-get install kamailio kamailio-autheph-modules")

	register := func(t *testing.T, k *testpeer.Kamailio, aor, username, password string) (testpeer.SIPpCalls, string) {
		t.Helper()
		out, errOut, _ := testpeer.RunSIPp(t, k.Addr,
			"-sf", testpeer.SIPpScenario(t, "register_digest.xml"),
			"-i", "127.0.0.1", "-p", fmt.Sprint(testpeer.FreePort(t, "udp")),
			"-s", aor, "-au", username, "-ap", password,
			"-m", "1", "-timeout", "15s", "-timeout_error")
		calls, err := testpeer.ParseSIPpCalls(out)
		if err != nil {
			t.Fatalf("%v\n%s\n%s", err, out, errOut)
		}
		return calls, out + errOut
	}
	expiry := time.Now().Add(10 * time.Minute)

	for _, h := range []chain.Hash{chain.SHA1, chain.SHA256, chain.SHA512} {
		t.Run(string(h), func(t *testing.T) {
			t.Parallel()
			k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Secrets: []string{"s3cret", "previous"}, SHA: string(h)})
			format := chain.EphemeralFormat{Hash: h}
			cases := []struct {
				name, user, secret, aor string
				ok                      bool
			}{
				{"the current secret is accepted", "alice", "s3cret", "alice", true},
				{"the previous secret is accepted during rotation", "alice", "previous", "alice", true},
				{"user@domain as the issuer writes it is accepted", "alice@127.0.0.1", "s3cret", "alice", true},
				{"user@domain of another domain is refused", "alice@evil.example", "s3cret", "alice", false},
				{"another user's credential is refused", "bob", "s3cret", "alice", false},
				{"a credential under an unknown secret is refused", "alice", "guessed", "alice", false},
			}
			for _, c := range cases {
				username, password, err := chain.MintEphemeral([]byte(c.secret), c.user, expiry, format)
				if err != nil {
					t.Fatal(err)
				}
				calls, out := register(t, k, c.aor, username, password)
				if got := calls.Successful == 1 && calls.Failed == 0; got != c.ok {
					t.Errorf("%s: registered=%v, want %v (%+v)\n%s", c.name, got, c.ok, calls, testpeer.Tail(out, 2000))
				}
			}
		})
	}
}
