package issuer

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds each limiter map; beyond it idle entries are dropped.
const maxLimiters = 100_000

// limits are the token rate limits per customer and per source address.
type limits struct {
	cfg      RateLimitConfig
	customer limiterMap
	source   limiterMap
}

type limiterMap struct {
	mu        sync.Mutex
	m         map[string]*limiterEntry
	lastPurge time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	rps  int
	last time.Time
}

func newLimits(cfg RateLimitConfig) *limits {
	return &limits{cfg: cfg, customer: limiterMap{m: map[string]*limiterEntry{}}, source: limiterMap{m: map[string]*limiterEntry{}}}
}

// allow takes one token from key's bucket of rps per second (burst 2×rps).
func (l *limiterMap) allow(key string, rps int, now time.Time) (bool, time.Duration) {
	if rps <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok || e.rps != rps {
		if len(l.m) >= maxLimiters {
			l.makeRoomLocked(now)
		}
		e = &limiterEntry{lim: rate.NewLimiter(rate.Limit(rps), 2*rps), rps: rps}
		l.m[key] = e
	}
	e.last = now
	r := e.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// makeRoomLocked frees an entry in a full map: idle entries go, at most
// one scan a second; when none is idle, an arbitrary entry goes, so a flood
// of new keys costs O(1) each and the map stays bounded.
func (l *limiterMap) makeRoomLocked(now time.Time) {
	if now.Sub(l.lastPurge) >= time.Second {
		l.lastPurge = now
		l.purgeLocked(now, time.Second)
	}
	if len(l.m) < maxLimiters {
		return
	}
	for k := range l.m {
		delete(l.m, k)
		return
	}
}

func (l *limiterMap) purgeLocked(now time.Time, idle time.Duration) {
	for k, e := range l.m {
		if now.Sub(e.last) > idle {
			delete(l.m, k)
		}
	}
}

func (l *limits) allowCustomer(id string, override int, now time.Time) error {
	rps := l.cfg.PerCustomer
	if override > 0 {
		rps = override
	}
	if ok, d := l.customer.allow(id, rps, now); !ok {
		return &RateLimitError{Scope: "customer", RetryAfter: d}
	}
	return nil
}

// AllowSource applies the per-source-address token rate limit. IPv6
// sources share one bucket per /64, the block one host usually holds.
func (i *Issuer) AllowSource(addr string) error {
	if ok, d := i.limits.source.allow(sourceKey(addr), i.limits.cfg.PerSource, i.now()); !ok {
		i.metrics.limited.WithLabelValues("source").Inc()
		return &RateLimitError{Scope: "source", RetryAfter: d}
	}
	return nil
}

func (l *limits) purge(now time.Time) {
	for _, m := range []*limiterMap{&l.customer, &l.source} {
		m.mu.Lock()
		m.purgeLocked(now, time.Minute)
		m.mu.Unlock()
	}
}

// sourceKey is the rate-limit key of a source address: the address, or
// its /64 for IPv6.
func sourceKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if a = a.Unmap(); a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}
