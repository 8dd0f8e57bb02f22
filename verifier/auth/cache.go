package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultCacheSize bounds a TokenCache made with size 0.
const DefaultCacheSize = 100_000

// TokenCache remembers verified tokens by their SHA-256, each until it
// expires, so that a refresh REGISTER costs no signature check. It holds
// at most its size; when full, an expired entry or an arbitrary one is
// dropped. Tokens themselves are never stored.
type TokenCache struct {
	mu   sync.Mutex
	max  int
	m    map[[32]byte]*Identity
	now  func() time.Time
	hits uint64
}

// NewTokenCache makes a cache of at most size entries (DefaultCacheSize
// when size is 0; a negative size disables caching).
func NewTokenCache(size int, now func() time.Time) *TokenCache {
	if size == 0 {
		size = DefaultCacheSize
	}
	return &TokenCache{max: size, m: make(map[[32]byte]*Identity), now: nowFunc(now)}
}

// Key is the cache key of token.
func (c *TokenCache) Key(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// Get returns the identity cached under key if it has not expired.
func (c *TokenCache) Get(key [32]byte) (*Identity, bool) {
	if c == nil || c.max < 0 {
		return nil, false
	}
	c.mu.Lock()
	id, ok := c.m[key]
	if ok && !c.now().Before(id.ExpiresAt) {
		delete(c.m, key)
		ok = false
	}
	if ok {
		c.hits++
	}
	c.mu.Unlock()
	return id, ok
}

// Put caches id under key until id.ExpiresAt (or until, if earlier and
// not zero).
func (c *TokenCache) Put(key [32]byte, id *Identity) {
	if c == nil || c.max < 0 {
		return
	}
	now := c.now()
	if !now.Before(id.ExpiresAt) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		evictSample(c.m, func(v *Identity) bool { return !now.Before(v.ExpiresAt) })
	}
	c.m[key] = id
}

// evictSample makes room in a full cache map: of up to 16 entries in map
// order (random, so this samples), it drops every expired one, and the
// first one looked at whatever its expiry.
func evictSample[K comparable, V any](m map[K]V, expired func(V) bool) {
	seen, dropped := 0, 0
	for k, v := range m {
		if expired(v) || dropped == 0 {
			delete(m, k)
			dropped++
		}
		if seen++; seen >= 16 {
			break
		}
	}
}

// Delete forgets the entry under key.
func (c *TokenCache) Delete(key [32]byte) {
	if c == nil || c.max < 0 {
		return
	}
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// Len is the number of cached entries, expired or not.
func (c *TokenCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
