package issuer_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Example embeds an issuer the way trunkpass demo does: build it, provision
// a customer and a secret in Go, serve Handler, and exchange an assertion.
func Example() {
	cfg := issuer.DefaultConfig()
	cfg.AdminToken = []byte("an-admin-token-of-16-bytes-or-more")
	cfg.MasterKey = make([]byte, 32)
	rand.Read(cfg.MasterKey)
	iss, err := issuer.New(cfg, issuer.WithStore(store.NewMemory())) // or cfg.Data for bolt
	if err != nil {
		fmt.Println(err)
		return
	}
	defer iss.Close()
	srv := httptest.NewServer(iss.Handler()) // or http.Server{Addr: cfg.Listen, Handler: ...}
	defer srv.Close()

	ctx := issuer.WithActor(context.Background(), "demo")
	if _, err := iss.CreateCustomer(ctx, issuer.Customer{ID: "demo", Domain: "demo.trunk.example.net"}); err != nil {
		fmt.Println(err)
		return
	}
	sec, err := iss.CreateSecret(ctx, "demo", time.Time{}, time.Time{}) // shown this once
	if err != nil {
		fmt.Println(err)
		return
	}

	// What the customer's backend does with the secret:
	claims := &chain.AssertionClaims{}
	claims.Issuer, claims.Subject, claims.Audience, claims.ID = "demo", "alice", []string{cfg.URL}, "visit-1"
	claims.IssuedAt = jwt.NewNumericDate(time.Now())
	claims.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Minute))
	assertion, _ := chain.MintAssertion(chain.Secret{ID: sec.ID, Customer: "demo", Value: []byte(sec.Secret)}, claims, "HS256", false)

	// What the browser does over HTTP, here through the Go API:
	tok, err := iss.Issue(context.Background(), &issuer.TokenRequest{Assertion: assertion})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tok.SIP.URI, tok.TokenType, tok.ExpiresIn)
	// Output: sip:alice@demo.trunk.example.net Bearer 600
}
