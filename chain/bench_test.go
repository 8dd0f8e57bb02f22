package chain

import (
	"crypto/ed25519"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// benchTokens is how many distinct tokens a verify benchmark cycles
// through, so that nothing can be served from a cache: every iteration
// parses and verifies a full token.
const benchTokens = 1024

// benchEdgeClaims are the claims of benchmark token i: its own jti, a
// grant of three methods and three dial patterns.
func benchEdgeClaims(i int) *EdgeClaims {
	c := validEdgeClaims()
	c.ID = "jti-" + strconv.Itoa(i)
	c.SIP = SIPGrant{AOR: "sip:alice@acme.example", Methods: []string{"REGISTER", "INVITE", "MESSAGE"},
		Dial: &DialRules{Allow: []string{"+44*", "sip:*@acme.example"}, Deny: []string{"+449*"}}}
	return c
}

func mintBenchTokens(b *testing.B, key *SigningKey) []string {
	b.Helper()
	toks := make([]string, benchTokens)
	for i := range toks {
		c := benchEdgeClaims(i)
		tok, err := MintEdgeToken(key, c)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	return toks
}

func benchEdgeVerify(b *testing.B, alg string) {
	key := testKey(b, alg)
	toks := mintBenchTokens(b, key)
	v := &EdgeVerifier{Keys: KeySetOf(key), Issuer: "https://issuer.example", Audience: "sip:trunk.example.net", MaxAge: time.Hour, Now: clock(t0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := v.Verify(toks[i%benchTokens]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEdgeVerifyEdDSA is a cold edge-token verification: size check,
// parse, key lookup, Ed25519 verify, claims and grant checks.
func BenchmarkEdgeVerifyEdDSA(b *testing.B) { benchEdgeVerify(b, AlgEdDSA) }

// BenchmarkEdgeVerifyES256 is BenchmarkEdgeVerifyEdDSA with ES256.
func BenchmarkEdgeVerifyES256(b *testing.B) { benchEdgeVerify(b, AlgES256) }

// BenchmarkEdgeVerifyRS256 is BenchmarkEdgeVerifyEdDSA with RS256.
func BenchmarkEdgeVerifyRS256(b *testing.B) { benchEdgeVerify(b, AlgRS256) }

// signingInputs splits tokens into their signing inputs and decoded
// signatures, for raw ed25519.Verify.
func signingInputs(b *testing.B, toks []string) (inputs, sigs [][]byte) {
	inputs, sigs = make([][]byte, len(toks)), make([][]byte, len(toks))
	for i, tok := range toks {
		dot := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		inputs[i], sigs[i] = []byte(tok[:dot]), sig
	}
	return inputs, sigs
}

// BenchmarkEd25519VerifyRaw is the floor of BenchmarkEdgeVerifyEdDSA:
// ed25519.Verify on the same signing inputs and signatures, decoded
// beforehand.
func BenchmarkEd25519VerifyRaw(b *testing.B) {
	key := testKey(b, AlgEdDSA)
	toks := mintBenchTokens(b, key)
	pub := key.Private.Public().(ed25519.PublicKey)
	inputs, sigs := signingInputs(b, toks)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if !ed25519.Verify(pub, inputs[i%benchTokens], sigs[i%benchTokens]) {
			b.Fatal("signature does not verify")
		}
	}
}

// BenchmarkEdgeVerifyOverRaw runs an EdDSA edge verify and a raw
// ed25519.Verify of the same token side by side in each iteration and
// reports their time ratio, so a shared, noisy machine slows both alike.
func BenchmarkEdgeVerifyOverRaw(b *testing.B) {
	key := testKey(b, AlgEdDSA)
	toks := mintBenchTokens(b, key)
	pub := key.Private.Public().(ed25519.PublicKey)
	inputs, sigs := signingInputs(b, toks)
	v := &EdgeVerifier{Keys: KeySetOf(key), Issuer: "https://issuer.example", Audience: "sip:trunk.example.net", MaxAge: time.Hour, Now: clock(t0)}
	var raw, full time.Duration
	for i := 0; b.Loop(); i++ {
		j := i % benchTokens
		start := time.Now()
		if !ed25519.Verify(pub, inputs[j], sigs[j]) {
			b.Fatal("signature does not verify")
		}
		mid := time.Now()
		if _, err := v.Verify(toks[j]); err != nil {
			b.Fatal(err)
		}
		raw, full = raw+mid.Sub(start), full+time.Since(mid)
	}
	b.ReportMetric(float64(full)/float64(raw), "verify/raw")
}

// BenchmarkMintEdgeToken signs an EdDSA edge token.
func BenchmarkMintEdgeToken(b *testing.B) {
	key := testKey(b, AlgEdDSA)
	c := validEdgeClaims()
	c.SIP = SIPGrant{Methods: []string{"REGISTER", "INVITE", "MESSAGE"}, Dial: &DialRules{Allow: []string{"+44*"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MintEdgeToken(key, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertionVerify verifies HS256 customer assertions with kid.
func BenchmarkAssertionVerify(b *testing.B) {
	s := Secret{ID: "cur", Customer: "acme", Value: []byte("cur-secret-0123456789abcdef01234")}
	toks := benchAssertions(b, s, false)
	v := &AssertionVerifier{Keys: StaticKeyring{s}, Audience: issuerURL, Now: clock(t0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := v.Verify(toks[i%benchTokens]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEphemeralVerify checks HMAC-SHA1 ephemeral credentials with one
// secret.
func BenchmarkEphemeralVerify(b *testing.B) {
	secret := []byte("s3cret")
	users, passwords := make([]string, benchTokens), make([]string, benchTokens)
	for i := range users {
		u, p, err := MintEphemeral(secret, "user"+strconv.Itoa(i), t0.Add(time.Hour), EphemeralFormat{})
		if err != nil {
			b.Fatal(err)
		}
		users[i], passwords[i] = u, p
	}
	v := &EphemeralVerifier{Secrets: [][]byte{secret}, Now: clock(t0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := v.Check(users[i%benchTokens], passwords[i%benchTokens]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMintOverRawSign runs an EdDSA MintEdgeToken and a raw
// ed25519.Sign of the same signing input side by side in each iteration
// and reports their time ratio: what minting costs beyond the signature.
func BenchmarkMintOverRawSign(b *testing.B) {
	key := testKey(b, AlgEdDSA)
	priv := key.Private.(ed25519.PrivateKey)
	claims := make([]*EdgeClaims, benchTokens)
	inputs := make([][]byte, benchTokens)
	for i := range claims {
		c := benchEdgeClaims(i)
		tok, err := MintEdgeToken(key, c)
		if err != nil {
			b.Fatal(err)
		}
		claims[i], inputs[i] = c, []byte(tok[:strings.LastIndexByte(tok, '.')])
	}
	var raw, full time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % benchTokens
		start := time.Now()
		sig := ed25519.Sign(priv, inputs[j])
		mid := time.Now()
		tok, err := MintEdgeToken(key, claims[j])
		if err != nil {
			b.Fatal(err)
		}
		raw, full = raw+mid.Sub(start), full+time.Since(mid)
		if len(tok) != len(inputs[j])+1+base64.RawURLEncoding.EncodedLen(len(sig)) {
			b.Fatal("token is not its signing input and signature")
		}
	}
	b.ReportMetric(float64(full)/float64(raw), "mint/raw")
}

// BenchmarkAssertionVerifyWithoutKid verifies HS256 customer assertions
// without kid, signed with the second of the customer's two valid secrets:
// both are tried.
func BenchmarkAssertionVerifyWithoutKid(b *testing.B) {
	first := Secret{ID: "a", Customer: "acme", Value: []byte("aaa-secret-0123456789abcdef01234")}
	second := Secret{ID: "b", Customer: "acme", Value: []byte("bbb-secret-0123456789abcdef01234")}
	toks := benchAssertions(b, second, true)
	v := &AssertionVerifier{Keys: StaticKeyring{first, second}, Audience: issuerURL, Now: clock(t0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		a, err := v.Verify(toks[i%benchTokens])
		if err != nil || a.SecretID != "b" {
			b.Fatal(a, err)
		}
	}
}

// benchAssertions mints benchTokens HS256 assertions with s, each with its
// own jti.
func benchAssertions(b *testing.B, s Secret, omitKid bool) []string {
	toks := make([]string, benchTokens)
	for i := range toks {
		c := &AssertionClaims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "acme", Subject: "visitor", Audience: jwt.ClaimStrings{issuerURL}, ID: "j" + strconv.Itoa(i),
			IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Minute)),
		}}
		tok, err := MintAssertion(s, c, "HS256", omitKid)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	return toks
}
