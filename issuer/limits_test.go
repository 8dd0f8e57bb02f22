package issuer

import (
	"fmt"
	"testing"
	"time"
)

func TestSourceKey(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"not an address", "not an address"},
	} {
		if got := sourceKey(tt.addr); got != tt.want {
			t.Errorf("sourceKey(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestLimiterMapStaysBounded floods a limiter map with new, active keys:
// it never grows past maxLimiters.
func TestLimiterMapStaysBounded(t *testing.T) {
	l := limiterMap{m: map[string]*limiterEntry{}}
	now := time.Unix(1767225600, 0)
	for i := range maxLimiters + 1000 {
		l.allow(fmt.Sprint("k", i), 10, now)
	}
	if n := len(l.m); n > maxLimiters {
		t.Fatalf("%d limiters, more than %d", n, maxLimiters)
	}
}
