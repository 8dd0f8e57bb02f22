package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

func TestJsSIPOverWebSocket(t *testing.T) {
	testpeer.RequireNode(t)
	is := newTestIssuer(t)
	cfg := testConfig(is.srv.URL)
	cfg.Listen = []string{"ws://127.0.0.1:0"}
	e := startEdge(t, cfg)
	script := filepath.Join(testpeer.MustRepoRoot(t), "verifier", "testdata", "jssip_register.cjs")
	run := func(token, expect string) (string, error) {
		return testpeer.RunNode(t, script, map[string]string{
			"WS_URL": "ws://" + e.Addr("ws"), "TOKEN": token, "USER": "alice", "DOMAIN": "acme.example", "EXPECT": expect,
		})
	}
	t.Run("JsSIP registers with a good token", func(t *testing.T) {
		out, err := run(is.mint(t, nil), "registered")
		if err != nil || !strings.Contains(out, "registered") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("JsSIP fails with a bad token", func(t *testing.T) {
		out, err := run(is.mint(t, nil)+"x", "failed")
		if err != nil || !strings.Contains(out, "failed") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}

// selfSigned writes a certificate for 127.0.0.1 and returns its files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestAllTransportsAndCallsToVisitors listens on udp, tcp, tls, ws and wss
// at once, registers a sipgo visitor over WebSocket, delivers a call from
// the trunk over that connection, and drops the binding when the
// connection goes.
func TestAllTransportsAndCallsToVisitors(t *testing.T) {
	is := newTestIssuer(t)
	// The trunk: a UDP socket bound to a port of its own choosing (no
	// guessed free port), which the edge knows as its upstream.
	trunk := newUDPPeer(t, "127.0.0.1:9") // destination set once the edge listens
	trunkPort := atoiPort(trunk.addr())
	cfg := testConfig(is.srv.URL)
	cfg.Listen = []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0", "tls://127.0.0.1:0", "ws://127.0.0.1:0", "wss://127.0.0.1:0"}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = selfSigned(t)
	cfg.Upstream = "sip:127.0.0.1:" + strconv.Itoa(trunkPort)
	e := startEdge(t, cfg)
	if n := len(e.Addrs()); n != 5 {
		t.Fatalf("%d listeners: %v", n, e.Addrs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The visitor: a sipgo UA over WebSocket that answers INVITEs.
	vua, _ := sipgo.NewUA(sipgo.WithUserAgentHostname("visitor.invalid"))
	defer vua.Close()
	vsrv, _ := sipgo.NewServer(vua)
	gotInvite := make(chan *sip.Request, 1)
	vsrv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		gotInvite <- req
		tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
	})
	vcli, _ := sipgo.NewClient(vua)
	edgeWS := e.Addr("ws")
	reg := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: atoiPort(edgeWS)})
	reg.SetTransport("WS")
	reg.AppendHeader(sip.NewHeader("To", "<sip:alice@acme.example>"))
	reg.AppendHeader(sip.NewHeader("From", "<sip:alice@acme.example>;tag=v1"))
	reg.AppendHeader(sip.NewHeader("Contact", "<sip:alice@visitor.invalid;transport=ws>"))
	reg.AppendHeader(sip.NewHeader("Authorization", "Bearer "+is.mint(t, nil)))
	res, err := vcli.Do(ctx, reg)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register over WS: %v %v", res, err)
	}
	if c := res.GetHeader("Contact"); c == nil || !strings.Contains(c.Value(), "visitor.invalid") {
		t.Fatalf("200 does not echo the Contact: %v", res)
	}

	// The trunk calls alice at the edge's address; the visitor answers 486.
	trunk.to, _ = net.ResolveUDPAddr("udp", e.Addr("udp"))
	res2 := trunk.request("INVITE", "sip:alice@"+e.Addr("udp"), "trunk-call-1", 1, "",
		"From", "<sip:+441234@127.0.0.1>;tag=t1", "To", "<sip:alice@"+e.Addr("udp")+">")
	if res2 == nil || res2.StatusCode != 486 {
		t.Fatalf("trunk got %v, want the visitor's 486", res2)
	}
	select {
	case r := <-gotInvite:
		if r.Transport() != "WS" {
			t.Fatalf("delivered over %s", r.Transport())
		}
	default:
		t.Fatal("visitor got no INVITE")
	}

	// The connection goes: so does the binding.
	vua.TransportLayer().Pool("ws").Clear()
	deadline := time.Now().Add(10 * time.Second)
	for e.Registrations() != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if e.Registrations() != 0 {
		t.Fatal("binding outlived its WebSocket connection")
	}
}

func atoiPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
