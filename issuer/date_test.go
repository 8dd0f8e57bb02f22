package issuer

import (
	"net/http"
	"testing"
	"time"
)

func TestHTTPDateIsFormattedOncePerSecond(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 23, 59, 59, int(100*time.Millisecond), time.FixedZone("CET", 3600))
	first := httpDate(t0)
	tests := []struct {
		name string
		at   time.Time
		want string
		same bool // shares the first call's value
	}{
		{"same second", t0.Add(800 * time.Millisecond), "Mon, 23 Nov 2026 22:59:59 GMT", true},
		{"next second", t0.Add(900 * time.Millisecond), "Mon, 23 Nov 2026 23:00:00 GMT", false},
		{"back in an earlier second", t0, "Mon, 23 Nov 2026 22:59:59 GMT", false},
	}
	if first[0] != t0.UTC().Format(http.TimeFormat) {
		t.Fatalf("first = %q", first)
	}
	for _, tt := range tests {
		got := httpDate(tt.at)
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		if same := &got[0] == &first[0]; same != tt.same {
			t.Errorf("%s: shares the first value: %v, want %v", tt.name, same, tt.same)
		}
	}
}
