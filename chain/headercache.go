package chain

import (
	"strings"
	"sync"
)

// maxCachedHeaders bounds an edge verifier's header cache.
const maxCachedHeaders = 64

// headerCache remembers the decoded headers of tokens that verified, by
// their encoded segment: an issuer writes one header per signing key and a
// customer backend one per secret, so each is decoded once. Only the
// decoding is skipped; the kid is still looked up and the algorithm still
// checked on every call. When full it starts again empty, so that the
// headers of rotated keys find a place.
type headerCache[H any] struct {
	mu sync.RWMutex
	m  map[string]H
}

func (c *headerCache[H]) get(seg string) (H, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	h, ok := c.m[seg]
	return h, ok
}

// put caches h for seg, holding at most max headers.
func (c *headerCache[H]) put(seg string, h H, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= max {
		c.m = make(map[string]H)
	}
	// A copy: the segment would otherwise pin the whole token.
	c.m[strings.Clone(seg)] = h
}
