package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/trunkpass/trunkpass/chain"
	customersite "github.com/trunkpass/trunkpass/examples/customer-site"
	"github.com/trunkpass/trunkpass/internal/echotrunk/echotest"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// demoTimeout bounds every wait of the demo tests.
const demoTimeout = 15 * time.Second

// runDemo starts a demo on system-chosen loopback ports.
func runDemo(t *testing.T, data string, tokenTTL time.Duration) *demo {
	t.Helper()
	o := demoOptions{host: "127.0.0.1", data: data, tokenTTL: tokenTTL,
		jssip: filepath.Join(testpeer.MustRepoRoot(t), customersite.DefaultJSSIPPath)}
	d, err := startDemo(context.Background(), o, zerolog.Nop())
	if err != nil {
		t.Fatalf("startDemo: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// tokenResponse is the part of the issuer's /v1/token answer the tests read.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	SIP         struct {
		URI       string   `json:"uri"`
		Realm     string   `json:"realm"`
		Websocket []string `json:"websocket"`
	} `json:"sip"`
	Ephemeral *struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"ephemeral"`
}

// exchange does what the page does: mint an assertion with the demo
// secret (as the customer site would) and exchange it at the issuer.
func exchange(t *testing.T, info DemoInfo, user string) tokenResponse {
	t.Helper()
	now := time.Now()
	a, err := chain.MintAssertion(chain.Secret{ID: info.SecretID, Value: []byte(info.Secret)}, &chain.AssertionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: info.Customer, Subject: user, Audience: jwt.ClaimStrings{info.IssuerURL},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
			ID: fmt.Sprintf("test-%d", now.UnixNano()),
		},
	}, "", false)
	if err != nil {
		t.Fatalf("MintAssertion: %v", err)
	}
	body, _ := json.Marshal(map[string]string{"assertion": a})
	res, err := http.Post(info.IssuerURL+"/v1/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /v1/token: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/token: %d %s", res.StatusCode, b)
	}
	var tok tokenResponse
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatalf("token response %s: %v", b, err)
	}
	return tok
}

func TestDemoProvisionsAndWritesDemoJSON(t *testing.T) {
	data := t.TempDir()
	d := runDemo(t, data, 0)
	b, err := os.ReadFile(filepath.Join(data, "demo.json"))
	if err != nil {
		t.Fatalf("demo.json: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(data, "demo.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("demo.json mode %v, want 0600 (it holds the secret)", fi.Mode().Perm())
	}
	var info DemoInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatalf("demo.json: %v", err)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	for _, k := range []string{"issuer_url", "site_url", "edge", "admin_token", "customer", "secret_id", "secret", "domain", "echo_uri"} {
		if v, ok := raw[k]; !ok || v == "" {
			t.Errorf("demo.json lacks %q", k)
		}
	}
	if info != d.info || info.Customer != "demo" || info.Domain != "demo.trunk.example.net" || info.EchoURI != "sip:echo@trunk.example.net" {
		t.Errorf("demo.json = %+v", info)
	}

	t.Run("the demo secret gets an edge token for the edge's WebSocket", func(t *testing.T) {
		tok := exchange(t, info, "alice")
		if tok.AccessToken == "" || tok.SIP.URI != "sip:alice@demo.trunk.example.net" || len(tok.SIP.Websocket) != 1 || tok.SIP.Websocket[0] != info.Edge.WS {
			t.Errorf("token response = %+v, want alice's AOR and %s", tok, info.Edge.WS)
		}
		if tok.Ephemeral == nil || !strings.HasSuffix(tok.Ephemeral.Username, ":alice@demo.trunk.example.net") {
			t.Errorf("ephemeral = %+v, want Digest credentials for alice", tok.Ephemeral)
		}
	})
	t.Run("the issuer answers CORS for the site's origin", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, info.IssuerURL+"/v1/token", nil)
		origin := strings.TrimSuffix(info.SiteURL, "/")
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
		}
	})
	t.Run("a restart on the same data keeps the customer, secret and admin token", func(t *testing.T) {
		d.Close()
		again := runDemo(t, data, 0)
		if again.info.SecretID != info.SecretID || again.info.Secret != info.Secret || again.info.AdminToken != info.AdminToken {
			t.Errorf("after restart secret %s, admin token changed %v; want %s and unchanged",
				again.info.SecretID, again.info.AdminToken != info.AdminToken, info.SecretID)
		}
		exchange(t, again.info, "bob")
	})
}

// TestDemoCallThroughTheEdge registers and calls the echo through the
// demo's edge over TCP, as a SIP client holding an edge token would.
func TestDemoCallThroughTheEdge(t *testing.T) {
	d := runDemo(t, t.TempDir(), 0)
	tok := exchange(t, d.info, "alice")
	bearer := sip.NewHeader("Authorization", "Bearer "+tok.AccessToken)
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("demo-test"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cli.Close(); ua.Close() }()
	host, port, _ := net.SplitHostPort(d.info.Edge.TCP)
	var edgePort int
	fmt.Sscan(port, &edgePort)
	edge := func(user, domain string) sip.Uri {
		u := sip.Uri{Scheme: "sip", User: user, Host: domain, UriParams: sip.NewParams()}
		u.UriParams.Add("transport", "tcp")
		return u
	}
	aor := sip.Uri{Scheme: "sip", User: "alice", Host: "demo.trunk.example.net"}
	from := func() *sip.FromHeader {
		f := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
		f.Params.Add("tag", fmt.Sprint(time.Now().UnixNano()))
		return f
	}
	route := sip.NewHeader("Route", fmt.Sprintf("<sip:%s:%d;transport=tcp;lr>", host, edgePort))
	contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}}

	t.Run("a REGISTER with the edge token is accepted", func(t *testing.T) {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "demo.trunk.example.net", UriParams: sip.NewParams()})
		req.Recipient.UriParams.Add("transport", "tcp")
		req.AppendHeader(route)
		req.AppendHeader(from())
		req.AppendHeader(&sip.ToHeader{Address: aor})
		req.AppendHeader(contact)
		req.AppendHeader(bearer)
		req.SetTransport("TCP")
		req.SetDestination(d.info.Edge.TCP)
		res, err := cli.Do(ctx, req)
		if err != nil {
			t.Fatalf("REGISTER: %v", err)
		}
		if res.StatusCode != 200 {
			t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
		}
	})

	invite := func(t *testing.T, user, domain string, body []byte) *sipgo.DialogClientSession {
		req := sip.NewRequest(sip.INVITE, edge(user, domain))
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.AppendHeader(from())
		req.AppendHeader(route)
		req.AppendHeader(bearer)
		req.SetDestination(d.info.Edge.TCP)
		dua := &sipgo.DialogUA{Client: cli, ContactHDR: *contact}
		sess, err := dua.WriteInvite(ctx, req)
		if err != nil {
			t.Fatalf("INVITE: %v", err)
		}
		return sess
	}

	t.Run("a call to the echo is proxied to the trunk and its RTP comes back", func(t *testing.T) {
		o := echotest.NewCaller(t, 25)
		sess := invite(t, "echo", "trunk.example.net", []byte(o.Offer(t, demoTimeout)))
		if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
			t.Fatalf("answer: %v", err)
		}
		if err := sess.Ack(ctx); err != nil {
			t.Fatalf("ACK: %v", err)
		}
		if err := o.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(sess.InviteResponse.Body())}); err != nil {
			t.Fatalf("answer SDP: %v", err)
		}
		sendCtx, stop := context.WithCancel(ctx)
		defer stop()
		go o.Send(sendCtx)
		select {
		case <-o.Echoed():
		case <-ctx.Done():
			t.Fatalf("%d echoed packets came back; trunk %+v", o.Count(), d.trunk.Stats())
		}
		stop()
		if err := sess.Bye(ctx); err != nil {
			t.Fatalf("BYE: %v", err)
		}
		if st := d.trunk.Stats(); st.Answered != 1 || st.Ended != 1 || st.RTPSent == 0 {
			t.Errorf("trunk stats = %+v, want one echoed call, ended", st)
		}
	})

	t.Run("a call outside the demo dial rules is forbidden", func(t *testing.T) {
		o := echotest.NewCaller(t, 1)
		sess := invite(t, "someone-else", "trunk.example.net", []byte(o.Offer(t, demoTimeout)))
		err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
		var rerr *sipgo.ErrDialogResponse
		if !errors.As(err, &rerr) || rerr.Res.StatusCode != 403 {
			t.Errorf("INVITE someone-else = %v, want 403", err)
		}
	})
}

// TestDemoInChromium drives the demo's own pages in headless Chromium
// through the real issuer, edge and echo trunk.
func TestDemoInChromium(t *testing.T) {
	chromium := testpeer.Require(t, "chromium", "apt-get install chromium")
	testpeer.RequireNode(t)
	tests := []struct {
		name      string
		path      string
		tokenTTL  time.Duration
		refreshes int
	}{
		// Two refreshes of a 6 s token put the call after the first token's
		// expiry: it gets through only with the refreshed token.
		{"the JWT flow registers with a Bearer token, refreshes it, calls the echo with the new one and hears it", "/", 6 * time.Second, 2},
		{"the legacy flow registers with ephemeral Digest credentials, calls the echo and hears it", "/legacy", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runDemo(t, t.TempDir(), tt.tokenTTL)
			out, err := testpeer.RunNode(t, "examples/customer-site/testdata/browser_page.js", map[string]string{
				"PAGE_URL":       strings.TrimSuffix(d.info.SiteURL, "/") + tt.path,
				"CHROMIUM":       chromium,
				"WAIT_REFRESHES": fmt.Sprint(tt.refreshes),
			})
			if err != nil {
				t.Fatalf("browser: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var got struct {
				State struct {
					Registered bool
					Refreshes  int
					Call       string
				}
				Stats struct{ PacketsReceived, PacketsSent int }
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
				t.Fatalf("browser output %q: %v", out, err)
			}
			st := d.trunk.Stats()
			t.Logf("page %+v; trunk %+v; edge registrations %d", got, st, d.edge.Registrations())
			if got.Stats.PacketsReceived < 25 || st.RTPSent == 0 || st.Ended != 1 {
				t.Errorf("page stats %+v, trunk %+v: want echoed RTP and the call ended", got.Stats, st)
			}
			if got.State.Refreshes < tt.refreshes {
				t.Errorf("refreshes = %d, want at least %d", got.State.Refreshes, tt.refreshes)
			}
		})
	}
}
