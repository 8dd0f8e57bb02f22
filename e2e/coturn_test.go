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

// TestTURNCredentialsAllocateOnCoturn checks that the ice_servers of a
// /v1/token response allocate a relay on an unmodified coturn configured
// with the issuer's TURN REST secret, and relay data through it.
func TestTURNCredentialsAllocateOnCoturn(t *testing.T) {
	const secret = "e2e-turn-secret"
	port := testpeer.StartCoturn(t, secret)
	turnURL := fmt.Sprintf("turn:127.0.0.1:%d", port)
	r := startIssuer(t, func(c *issuer.Config) {
		c.TURNSecret = []byte(secret)
		c.TURN.URLs = []string{turnURL}
	})
	c := r.provision(t, "acme", "acme.trunk.test", nil)
	tr := r.token(t, c, "alice")
	if len(tr.ICEServers) != 1 {
		t.Fatalf("ice_servers %+v, want one entry", tr.ICEServers)
	}
	ice := tr.ICEServers[0]
	if len(ice.URLs) != 1 || ice.URLs[0] != turnURL {
		t.Fatalf("ice_servers[0].urls %v, want [%s]", ice.URLs, turnURL)
	}
	// coturn's REST username is "<expiry>:<user>", valid for turn.ttl.
	exp, user, ok := strings.Cut(ice.Username, ":")
	expiry, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || user != "alice" {
		t.Fatalf("ice_servers[0].username %q, want <expiry>:alice", ice.Username)
	}
	if limit := time.Now().Add(r.cfg.TURN.TTL).Unix(); expiry > limit || expiry <= time.Now().Unix() {
		t.Fatalf("TURN credential expiry %d: want in the future and at most now + turn.ttl (%d)", expiry, limit)
	}

	t.Run("the issued credential allocates and relays", func(t *testing.T) {
		out, err := testpeer.TURNRelay(t, port, ice.Username, ice.Credential)
		if err != nil || strings.Contains(out, "ERROR") || !strings.Contains(out, "tot_recv_msgs=") {
			t.Fatalf("allocation with the issued credential failed: %v\n%s", err, testpeer.Tail(out, 3000))
		}
		if strings.Contains(out, "tot_recv_msgs=0\n") || !strings.Contains(out, "Total lost packets 0 ") {
			t.Fatalf("nothing relayed:\n%s", testpeer.Tail(out, 3000))
		}
	})

	t.Run("a wrong credential cannot allocate", func(t *testing.T) {
		pw := []byte(ice.Credential)
		if pw[0] == 'A' {
			pw[0] = 'B'
		} else {
			pw[0] = 'A'
		}
		out, err := testpeer.TURNRelay(t, port, ice.Username, string(pw))
		if err == nil || !strings.Contains(out, "Cannot complete Allocation") {
			t.Fatalf("allocation with a wrong credential: err=%v\n%s", err, testpeer.Tail(out, 3000))
		}
	})

	t.Run("a credential made with another secret cannot allocate", func(t *testing.T) {
		other := startIssuer(t, func(c *issuer.Config) {
			c.TURNSecret = []byte("not-" + secret)
			c.TURN.URLs = []string{turnURL}
		})
		oc := other.provision(t, "acme", "acme.trunk.test", nil)
		ice := other.token(t, oc, "alice").ICEServers[0]
		out, err := testpeer.TURNRelay(t, port, ice.Username, ice.Credential)
		if err == nil || !strings.Contains(out, "Cannot complete Allocation") {
			t.Fatalf("allocation with another issuer's credential: err=%v\n%s", err, testpeer.Tail(out, 3000))
		}
	})
}
