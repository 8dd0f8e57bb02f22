package chain

import (
	"errors"
	"fmt"
	"testing"
)

// TestHeaderCacheKeepsKeyChecks: a header decoded once is not decoded
// again, but its kid is still looked up and its algorithm still pinned.
func TestHeaderCacheKeepsKeyChecks(t *testing.T) {
	key := testKey(t, AlgEdDSA)
	keys := KeySetOf(key)
	v := &EdgeVerifier{Keys: keys, Issuer: "https://issuer.example", Audience: "sip:trunk.example.net", Now: clock(t0)}
	tok, err := MintEdgeToken(key, validEdgeClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("first verify: %v", err)
	}
	if len(v.headers.m) != 1 {
		t.Fatalf("%d cached headers after one token, want 1", len(v.headers.m))
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("verify with a cached header: %v", err)
	}
	delete(keys, key.ID)
	if _, err := v.Verify(tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("cached header of a removed key: %v, want ErrUnknownKey", err)
	}
	keys[key.ID] = VerificationKey{Alg: AlgES256, Key: key.Private.Public()}
	if _, err := v.Verify(tok); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("cached header, key now pinned to ES256: %v, want ErrAlgorithm", err)
	}
}

// A header cache never holds more than its bound, and always takes the
// newest header: when full it starts again.
func TestHeaderCacheIsBounded(t *testing.T) {
	var c headerCache[jwsHeader]
	for i := range 3 * maxCachedHeaders {
		c.put(fmt.Sprint("seg", i), jwsHeader{Alg: AlgEdDSA, Kid: fmt.Sprint(i)}, maxCachedHeaders)
		if len(c.m) > maxCachedHeaders {
			t.Fatalf("%d cached headers, bound %d", len(c.m), maxCachedHeaders)
		}
	}
	if h, ok := c.get(fmt.Sprint("seg", 3*maxCachedHeaders-1)); !ok || h.Kid != fmt.Sprint(3*maxCachedHeaders-1) {
		t.Fatalf("the newest header is not cached: %+v %v", h, ok)
	}
}
