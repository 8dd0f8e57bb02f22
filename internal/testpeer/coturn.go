package testpeer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// CoturnRealm is the realm StartCoturn gives turnserver.
const CoturnRealm = "trunk.test"

// StartCoturn starts turnserver on 127.0.0.1 with the TURN REST API
// (use-auth-secret) and the given static secret, without TLS, DTLS or its
// telnet CLI, and returns its port (UDP and TCP) once it answers a STUN
// Binding request (10 s at most). Credentials are
// username "<expiry>:<user>", password base64(HMAC-SHA1(secret, username)).
// It is stopped when the test ends.
func StartCoturn(t testing.TB, secret string) (port int) {
	t.Helper()
	bin := Require(t, "turnserver", "apt-get install coturn")
	dir := t.TempDir()
	port = FreeUDPTCPPort(t)
	relayMin := 49152 + port%8000
	cmd := exec.Command(bin,
		"-n", // no configuration file: everything is below
		"--listening-ip=127.0.0.1",
		"--relay-ip=127.0.0.1",
		fmt.Sprintf("--listening-port=%d", port),
		fmt.Sprintf("--min-port=%d", relayMin),
		fmt.Sprintf("--max-port=%d", relayMin+200),
		"--use-auth-secret",
		"--static-auth-secret="+secret,
		"--realm="+CoturnRealm,
		"--no-tls",
		"--no-dtls",
		"--no-cli",
		"--allow-loopback-peers", // the test peers are on 127.0.0.1
		"--no-software-attribute",
		"--log-file=stdout",
		"--simple-log",
		"--pidfile="+filepath.Join(dir, "turnserver.pid"),
		"--userdb="+filepath.Join(dir, "turndb"),
	)
	cmd.Dir = dir
	d := startDaemon(t, "turnserver", cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var tid [12]byte
	err := waitUDP(d, addr, 10*time.Second, func() []byte {
		_, _ = rand.Read(tid[:])
		return stunBindingRequest(tid)
	}, func(b []byte) bool {
		// Binding success response (0x0101) for our transaction.
		return len(b) >= 20 && binary.BigEndian.Uint16(b[0:2]) == 0x0101 && bytes.Equal(b[8:20], tid[:])
	})
	if err != nil {
		t.Fatalf("testpeer: %v\n%s", err, Tail(d.out.String(), 4000))
	}
	return port
}

// stunBindingRequest is a minimal RFC 5389 Binding request.
func stunBindingRequest(tid [12]byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:2], 0x0001)     // Binding request
	binary.BigEndian.PutUint16(b[2:4], 0)          // no attributes
	binary.BigEndian.PutUint32(b[4:8], 0x2112A442) // magic cookie
	copy(b[8:20], tid[:])
	return b
}

// TURNRelay runs turnutils_uclient once against the TURN server on
// 127.0.0.1:port: two clients allocate relays with username and password
// and send each other one message through them (30 s at most). It returns
// the client's output and its exit error.
func TURNRelay(t testing.TB, port int, username, password string) (string, error) {
	t.Helper()
	bin := Require(t, "turnutils_uclient", "apt-get install coturn")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// -y: client-to-client through the relays, -c: no RTCP, -n 1 -m 1: one
	// message, one client pair, -e: the peer address.
	cmd := exec.CommandContext(ctx, bin, "-y", "-c", "-n", "1", "-m", "1",
		"-u", username, "-w", password,
		"-p", fmt.Sprint(port), "-e", "127.0.0.1", "127.0.0.1")
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("turnutils_uclient still running after 30s:\n%s", Tail(string(out), 3000))
	}
	return string(out), err
}
