package issuer_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/issuer/edsign"
)

// BenchmarkMintEdgeToken is the cost of minting an edge token, signed by
// crypto/ed25519 and by edsign as the issuer signs, from 8 goroutines per
// core as requests in flight would.
func BenchmarkMintEdgeToken(b *testing.B) {
	key, err := chain.GenerateSigningKey(chain.AlgEdDSA, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	key.State = chain.KeyActive
	fast := *key
	if fast.Private, err = edsign.New(key.Private.(ed25519.PrivateKey)); err != nil {
		b.Fatal(err)
	}
	claims := &chain.EdgeClaims{CID: "acme", SIP: chain.SIPGrant{AOR: "sip:alice@acme.example", Methods: issuer.DefaultMethods}}
	claims.Issuer, claims.Subject, claims.ID = "http://127.0.0.1", "alice", "j"
	claims.Audience = []string{"sip:trunk.example.net"}
	claims.IssuedAt, claims.ExpiresAt = jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now().Add(time.Minute))
	for name, k := range map[string]*chain.SigningKey{"crypto-ed25519": key, "edsign": &fast} {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := chain.MintEdgeToken(k, claims); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkTokenHTTP posts customer assertions (each with its own jti) to
// /v1/token over loopback HTTP, with both jti persistence modes.
func BenchmarkTokenHTTP(b *testing.B) {
	for _, mode := range []issuer.JTIPersistence{issuer.JTIBatch, issuer.JTIGroup} {
		b.Run("jti="+mode.String(), func(b *testing.B) {
			e := newEnvWith(b, issuer.WithJTIPersistence(mode))
			s := e.provision("bench", nil)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i], _ = json.Marshal(map[string]string{"assertion": e.assertion(s, "alice", nil)})
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					res, err := client.Post(e.url+"/v1/token", "application/json", bytes.NewReader(bodies[i]))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkTokenHandler serves assertion token requests through the
// issuer's HTTP handler without a network: the issuer's own cost per token
// (gin, body, assertion, jti, grant, edge token, answer), apart from
// net/http's connection handling and the kernel.
func BenchmarkTokenHandler(b *testing.B) {
	e := newEnvWith(b, issuer.WithJTIPersistence(issuer.JTIGroup), func(c *issuer.Config) {
		c.EphemeralSecret, c.TURNSecret = nil, nil
	})
	s := e.provision("bench", nil)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]string{"assertion": e.assertion(s, "alice", nil)})
	}
	h := e.iss.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/token", bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
