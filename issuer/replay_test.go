package issuer

import (
	"fmt"
	"testing"
	"time"
)

func TestReplaySet(t *testing.T) {
	r := newReplaySet()
	now := time.Unix(1_800_000_000, 0)
	const n = 10_000
	for k := range n {
		if !r.use(fmt.Sprintf("acme/%d", k), now.Add(time.Duration(k%2)*time.Minute)) {
			t.Fatalf("fresh id %d refused", k)
		}
	}
	for _, id := range []string{"acme/0", "acme/1", fmt.Sprintf("acme/%d", n-1)} {
		if r.use(id, now.Add(time.Hour)) {
			t.Errorf("replay of %s accepted", id)
		}
	}
	if !r.use("other/0", now.Add(30*time.Second)) {
		t.Error("same jti under another customer refused")
	}
	// Ids expiring in the current second stay; earlier ones go.
	r.purge(now.Add(30 * time.Second))
	if !r.use("acme/0", now) {
		t.Error("acme/0 expired before the purge and is still refused")
	}
	if r.use("acme/1", now) {
		t.Error("acme/1 expires after the purge and was forgotten")
	}
	if r.use("other/0", now) {
		t.Error("an id expiring in the purge's own second was forgotten")
	}
}

func BenchmarkReplaySetUse(b *testing.B) {
	r := newReplaySet()
	exp := time.Now().Add(time.Minute)
	ids := make([]string, 1<<16)
	for k := range ids {
		ids[k] = fmt.Sprintf("acme/%022d", k)
	}
	b.ResetTimer()
	for k := range b.N {
		if k%len(ids) == 0 && k > 0 {
			b.StopTimer()
			r = newReplaySet()
			b.StartTimer()
		}
		r.use(ids[k%len(ids)], exp)
	}
}
