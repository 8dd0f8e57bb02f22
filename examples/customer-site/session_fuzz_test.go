package customersite

import (
	"net/http"
	"testing"
	"time"
)

// FuzzSessionCookie feeds arbitrary cookie values to the session check:
// it must never panic, and without the key nothing but the genuine
// cookie may log anyone in.
func FuzzSessionCookie(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	s, err := newSessionSigner(time.Hour, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	genuine := s.cookie("alice", false).Value
	f.Add(genuine)
	f.Add("")
	f.Add("YWxpY2U.1800003600.")
	f.Add("....")
	f.Add("bWFsbG9yeQ.9999999999.AAAA")
	f.Fuzz(func(t *testing.T, value string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: value})
		user, ok := s.user(r)
		if ok && (value != genuine || user != "alice") {
			t.Fatalf("cookie %q logged in %q", value, user)
		}
	})
}
