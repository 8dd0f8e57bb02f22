package customersite_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	customersite "github.com/trunkpass/trunkpass/examples/customer-site"
	"github.com/trunkpass/trunkpass/internal/echotrunk"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// fakeIssuer stands in for the hosted issuer: it checks the page's
// credentials with the chain verifiers, answers CORS for the site's origin
// and points JsSIP at the echo trunk's WebSocket.
type fakeIssuer struct {
	origin  string // the site's origin, set once the site runs
	ws      string
	ttl     int64
	mu      sync.Mutex
	errs    []string
	issued  atomic.Int64
	secrets chain.StaticKeyring
	url     string
}

func (f *fakeIssuer) fail(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.errs = append(f.errs, msg)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": msg})
}

// set records the issuer's own URL and the site's origin once both
// servers run; requests read them under the same lock.
func (f *fakeIssuer) set(url, origin string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.url, f.origin = url, origin
}

func (f *fakeIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	url, origin := f.url, f.origin
	f.mu.Unlock()
	if r.Header.Get("Origin") == origin {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.Header().Set("Access-Control-Allow-Methods", "POST")
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/token" {
		http.NotFound(w, r)
		return
	}
	var body struct{ Assertion, Customer, Username, Password string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.fail(w, http.StatusBadRequest, "body: %v", err)
		return
	}
	var user string
	switch {
	case body.Assertion != "":
		a, err := (&chain.AssertionVerifier{Keys: f.secrets, Audience: url}).Verify(body.Assertion)
		if err != nil {
			f.fail(w, http.StatusBadRequest, "assertion: %v", err)
			return
		}
		user = a.Subject
	case body.Customer == "demo":
		cred, err := (&chain.EphemeralVerifier{Secrets: [][]byte{f.secrets[0].Value}}).Check(body.Username, body.Password)
		if err != nil {
			f.fail(w, http.StatusBadRequest, "ephemeral: %v", err)
			return
		}
		user = cred.User
	default:
		f.fail(w, http.StatusBadRequest, "no credential")
		return
	}
	n := f.issued.Add(1)
	exp := time.Now().Add(time.Duration(f.ttl) * time.Second).Unix()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": fmt.Sprintf("edge-token-%d", n),
		"token_type":   "Bearer",
		"expires_in":   f.ttl,
		"sip": map[string]any{
			"uri":       "sip:" + user + "@demo.trunk.example.net",
			"realm":     "trunk.example.net",
			"websocket": []string{f.ws},
		},
		"ephemeral": map[string]any{
			"username":   fmt.Sprintf("%d:%s@demo.trunk.example.net", exp, user),
			"password":   "not-checked-by-the-echo-trunk",
			"expires_at": exp,
		},
	})
}

// TestPageInChromium runs the real page and JsSIP bundle against a fake
// issuer and the echo trunk reached directly over WebSocket.
func TestPageInChromium(t *testing.T) {
	chromium := testpeer.Require(t, "chromium", "apt-get install chromium")
	testpeer.RequireNode(t)
	bundle := filepath.Join(testpeer.MustRepoRoot(t), customersite.DefaultJSSIPPath)

	tests := []struct {
		name      string
		path      string
		ttl       int64
		refreshes int
	}{
		{"the JWT flow registers, refreshes its token before expiry, calls the echo and hears it", "/", 6, 1},
		{"the legacy flow registers with ephemeral credentials, calls the echo and hears it", "/legacy", 600, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trunk, err := echotrunk.New(echotrunk.Options{Registrar: true})
			if err != nil {
				t.Fatalf("echotrunk: %v", err)
			}
			defer trunk.Close()
			wsl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer wsl.Close()
			go trunk.ServeWS(wsl)

			iss := &fakeIssuer{
				ws:      "ws://" + wsl.Addr().String(),
				ttl:     tt.ttl,
				secrets: chain.StaticKeyring{{ID: "sec-1", Customer: "demo", Value: []byte(secretVal)}},
			}
			issSrv := httptest.NewServer(iss)
			defer issSrv.Close()

			opts := baseOptions()
			opts.IssuerURL = issSrv.URL
			opts.JSSIPPath = bundle
			site, err := customersite.New(opts)
			if err != nil {
				t.Fatalf("site: %v", err)
			}
			siteSrv := httptest.NewServer(site)
			defer siteSrv.Close()
			iss.set(issSrv.URL, siteSrv.URL)

			out, err := testpeer.RunNode(t, "examples/customer-site/testdata/browser_page.js", map[string]string{
				"PAGE_URL": siteSrv.URL + tt.path, "CHROMIUM": chromium,
				"WAIT_REFRESHES": fmt.Sprint(tt.refreshes),
			})
			iss.mu.Lock()
			issuerErrs := strings.Join(iss.errs, "; ")
			iss.mu.Unlock()
			if err != nil {
				t.Fatalf("browser: %v\n%s\nissuer errors: %s", err, out, issuerErrs)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var got struct {
				State struct {
					Registered bool
					Refreshes  int
					Call       string
					URI        string
				}
				Stats struct{ PacketsReceived, PacketsSent int }
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
				t.Fatalf("browser output %q: %v", out, err)
			}
			st := trunk.Stats()
			t.Logf("page %+v; trunk %+v; tokens issued %d", got, st, iss.issued.Load())
			if issuerErrs != "" {
				t.Errorf("issuer refused the page's credentials: %s", issuerErrs)
			}
			if got.State.URI != "sip:alice@demo.trunk.example.net" || !strings.HasPrefix(got.State.Call, "ended") {
				t.Errorf("page state = %+v, want alice registered and the call ended", got.State)
			}
			if got.Stats.PacketsReceived < 25 || got.Stats.PacketsSent < 25 {
				t.Errorf("page stats = %+v, want at least 25 RTP packets each way", got.Stats)
			}
			if st.Answered != 1 || st.Ended != 1 || st.RTPSent == 0 {
				t.Errorf("trunk stats = %+v, want one echoed call, ended", st)
			}
			if want := int64(1 + tt.refreshes); iss.issued.Load() < want || st.Registers < want || got.State.Refreshes < tt.refreshes {
				t.Errorf("tokens issued %d, REGISTERs %d, refreshes %d: want at least %d each", iss.issued.Load(), st.Registers, got.State.Refreshes, want)
			}
		})
	}
}

// TestJSSIPBundleMatchesLockfile rebuilds the JsSIP browser bundle with the
// locked esbuild and jssip and compares it with the checked-in copy.
func TestJSSIPBundleMatchesLockfile(t *testing.T) {
	testpeer.RequireNode(t)
	root := testpeer.MustRepoRoot(t)
	out := filepath.Join(t.TempDir(), "jssip.min.js")
	cmd := exec.Command(filepath.Join(root, "node_modules", ".bin", "esbuild"),
		filepath.Join("node_modules", "jssip", "lib", "JsSIP.js"),
		"--bundle", "--format=iife", "--global-name=JsSIP", "--minify", "--outfile="+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkedIn, err := os.ReadFile(filepath.Join(root, customersite.DefaultJSSIPPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, checkedIn) {
		t.Fatalf("%s differs from a fresh build (%d vs %d bytes): run npm ci && npm run build:jssip and commit it",
			customersite.DefaultJSSIPPath, len(checkedIn), len(fresh))
	}
}
