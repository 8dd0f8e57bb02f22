package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	ruri := uri(b, "sip:trunk.example.net")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Verify("REGISTER", ruri, params); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBearerCached(b *testing.B) {
	key, _ := chain.GenerateSigningKey(chain.AlgEdDSA, time.Now())
	c := NewTokenCache(0, nil)
	bj := &BearerJWT{Cache: c, Verifier: &chain.EdgeVerifier{Keys: chain.KeySetOf(key)}}
	tok := strings.Repeat("x", 600)
	c.Put(c.Key(tok), &Identity{KeyID: key.ID, ExpiresAt: time.Now().Add(time.Hour)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bj.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBearerUncached(b *testing.B) {
	key, _ := chain.GenerateSigningKey(chain.AlgEdDSA, time.Now())
	key.State = chain.KeyActive
	now := time.Now()
	c := &chain.EdgeClaims{SIP: chain.SIPGrant{AOR: "sip:alice@acme.example", Methods: []string{"REGISTER"}}}
	c.Issuer, c.Subject, c.ID = "https://issuer", "alice", "j"
	c.Audience = []string{"sip:trunk"}
	c.IssuedAt, c.ExpiresAt = jwtDate(now.Add(-time.Minute)), jwtDate(now.Add(time.Hour))
	tok, err := chain.MintEdgeToken(key, c)
	if err != nil {
		b.Fatal(err)
	}
	bj := &BearerJWT{Verifier: &chain.EdgeVerifier{Keys: chain.KeySetOf(key), Issuer: "https://issuer", Audience: "sip:trunk"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bj.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func jwtDate(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }
