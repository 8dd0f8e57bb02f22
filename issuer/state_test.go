package issuer

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/edsign"
)

// TestStateSignsWithEdsign shows that the state mints with the active
// Ed25519 key expanded for edsign, that the tokens are those the plain key
// mints, and that keys of other algorithms sign as they are.
func TestStateSignsWithEdsign(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	claims := func() *chain.EdgeClaims {
		c := &chain.EdgeClaims{}
		c.Issuer, c.Audience, c.Subject, c.ID = "https://issuer.test", jwt.ClaimStrings{"edge"}, "alice", "j1"
		c.IssuedAt = jwt.NewNumericDate(now)
		c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
		return c
	}
	for _, alg := range chain.EdgeAlgorithms {
		t.Run(alg, func(t *testing.T) {
			active, err := chain.GenerateSigningKey(alg, now)
			if err != nil {
				t.Fatal(err)
			}
			active.State = chain.KeyActive
			next, err := chain.GenerateSigningKey(alg, now)
			if err != nil {
				t.Fatal(err)
			}
			st := &state{keys: []*chain.SigningKey{next, active}}
			if err := st.derive(); err != nil {
				t.Fatal(err)
			}
			if st.active != active || st.signer.ID != active.ID || st.signer.State != chain.KeyActive {
				t.Fatalf("active %v, signer %v; want key %s", st.active, st.signer, active.ID)
			}
			_, isEdsign := st.signer.Private.(*edsign.PrivateKey)
			if isEdsign != (alg == chain.AlgEdDSA) {
				t.Fatalf("signer's key is %T", st.signer.Private)
			}
			tok, err := chain.MintEdgeToken(st.signer, claims())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := (&chain.EdgeVerifier{Keys: chain.KeySetOf(active), Issuer: "https://issuer.test", Audience: "edge",
				Now: func() time.Time { return now }}).Verify(tok); err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if alg == chain.AlgEdDSA {
				if plain, err := chain.MintEdgeToken(active, claims()); err != nil || plain != tok {
					t.Fatalf("edsign token %s, plain key's %s (%v)", tok, plain, err)
				}
			}
		})
	}
}
