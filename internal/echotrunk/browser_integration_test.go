package echotrunk_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo"

	"github.com/trunkpass/trunkpass/internal/echotrunk"
	"github.com/trunkpass/trunkpass/internal/testpeer"
)

// TestBrowserCallIsEchoed places a call from headless Chromium: the
// browser's own WebRTC offer reaches the trunk in a SIP INVITE over UDP
// (as the edge would forward it) and the browser counts the echoed RTP.
func TestBrowserCallIsEchoed(t *testing.T) {
	chromium := testpeer.Require(t, "chromium", "apt-get install chromium")
	testpeer.RequireNode(t)
	tr, ls := startTrunk(t, echotrunk.Options{})
	caller := newCaller(t)

	var mu sync.Mutex
	var sess *sipgo.DialogClientSession
	var offerSize int
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!doctype html><title>echo</title>")
	})
	mux.HandleFunc("POST /call", func(w http.ResponseWriter, r *http.Request) {
		offer, _ := io.ReadAll(io.LimitReader(r.Body, echotrunk.MaxSDPSize))
		ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
		defer cancel()
		s, err := caller.Invite(ctx, target("echo", ls.udp, "udp"), offer, sdpHeader())
		if err == nil {
			err = s.WaitAnswer(ctx, sipgo.AnswerOptions{})
		}
		if err == nil {
			err = s.Ack(ctx)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		mu.Lock()
		sess, offerSize = s, len(offer)
		mu.Unlock()
		w.Write(s.InviteResponse.Body())
	})
	mux.HandleFunc("POST /bye", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := sess
		mu.Unlock()
		if s == nil {
			http.Error(w, "no call", http.StatusConflict)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
		defer cancel()
		if err := s.Bye(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})
	page := httptest.NewServer(mux)
	defer page.Close()

	out, err := testpeer.RunNode(t, "internal/echotrunk/testdata/browser_echo.js",
		map[string]string{"PAGE_URL": page.URL, "CHROMIUM": chromium})
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var got struct {
		Inb, Out int
		ICE      string
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	t.Logf("browser offer %d bytes; browser RTP in %d out %d, ICE %s; trunk %+v; browser output %s", offerSize, got.Inb, got.Out, got.ICE, tr.Stats(), lines[len(lines)-1])
	if got.Inb < 25 {
		t.Errorf("browser received %d echoed RTP packets, want at least 25 (ICE %s)", got.Inb, got.ICE)
	}
	st := tr.Stats()
	if st.RTPReceived == 0 || st.RTPSent == 0 || st.Ended != 1 || st.Active != 0 {
		t.Errorf("trunk stats = %+v, want RTP both ways and the call ended", st)
	}
}
