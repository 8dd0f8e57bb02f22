package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/chain"
)

func BenchmarkDigestChallenge(b *testing.B) {
	now := time.Now()
	d, _ := NewDigest("trunk.example.net", &chain.EphemeralVerifier{Secrets: [][]byte{[]byte("s")}, Now: clock(&now)}, time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		d.Challenges(false)
	}
}

func BenchmarkDigestVerify(b *testing.B) {
	now := time.Now()
	secret := []byte("ephemeral-shared-secret")
	d, _ := NewDigest("trunk.example.net", &chain.EphemeralVerifier{Secrets: [][]byte{secret}, Now: clock(&now)}, time.Minute)
	username, password, _ := chain.MintEphemeral(secret, "alice", now.Add(time.Hour), chain.EphemeralFormat{})
	params := answer(&testing.T{}, d.Challenges(false)[0], "REGISTER", "sip:trunk.example.net", username, password)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Verify("REGISTER", params); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBearerCached(b *testing.B) {
	c := NewTokenCache(0, nil)
	bj := &BearerJWT{Cache: c}
	tok := strings.Repeat("x", 600)
	c.Put(c.Key(tok), &Identity{ExpiresAt: time.Now().Add(time.Hour)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bj.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
