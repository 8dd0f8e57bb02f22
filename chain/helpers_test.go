package chain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// t0 is the fixed instant of the injected clocks: 2026-01-01T00:00:00Z,
// Unix 1767225600.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// clock returns a Now func that always answers t.
func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

var (
	testKeysOnce sync.Once
	testKeys     map[string]*SigningKey
	testKeysErr  error
)

// testKey returns an active signing key for alg, generated once per test
// binary (RSA generation is slow).
func testKey(t testing.TB, alg string) *SigningKey {
	t.Helper()
	testKeysOnce.Do(func() {
		testKeys = map[string]*SigningKey{}
		for _, a := range EdgeAlgorithms {
			k, err := GenerateSigningKey(a, t0)
			if err != nil {
				testKeysErr = err
				return
			}
			k.State = KeyActive
			testKeys[a] = k
		}
	})
	if testKeysErr != nil {
		t.Fatalf("generate test keys: %v", testKeysErr)
	}
	return testKeys[alg]
}

// b64url encodes without padding, as JOSE does.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// craft builds a compact JWS by hand from a header and claims, signing the
// signing input with sign (nil leaves the signature empty).
func craft(t testing.TB, header map[string]any, claims any, sign func(input []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64url(h) + "." + b64url(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64url(sig)
}

// hmacSHA256 signs like HS256 with key.
func hmacSHA256(key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

// es256Sign signs like ES256 (raw r||s) with priv.
func es256Sign(t testing.TB, priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// signWith signs input with key's algorithm, as MintEdgeToken would.
func signWith(t testing.TB, key *SigningKey) func([]byte) []byte {
	return func(in []byte) []byte {
		m, err := signingMethod(key.Alg)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := m.Sign(string(in), key.Private)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// publicKeyBytes returns the bytes an attacker would use as an HMAC key in
// an algorithm-confusion attack: the raw Ed25519 key, or the PKIX-free
// modulus bytes of an RSA key, or the raw EC point.
func publicKeyBytes(t testing.TB, pub crypto.PublicKey) []byte {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return []byte(k)
	case *rsa.PublicKey:
		return append(k.N.Bytes(), big.NewInt(int64(k.E)).Bytes()...)
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("unexpected key type %T", pub)
	return nil
}

// edgeClaimsMap is a valid set of edge-token claims as a map, for crafting.
func edgeClaimsMap() map[string]any {
	return map[string]any{
		"iss": "https://issuer.example",
		"sub": "alice",
		"aud": "sip:trunk.example.net",
		"iat": t0.Unix(),
		"nbf": t0.Unix(),
		"exp": t0.Add(10 * time.Minute).Unix(),
		"jti": "j1",
		"cid": "acme",
		"sip": map[string]any{"methods": []string{"REGISTER", "INVITE"}},
	}
}

// validEdgeClaims is a valid set of edge-token claims.
func validEdgeClaims() *EdgeClaims {
	return &EdgeClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "https://issuer.example",
			Subject:   "alice",
			Audience:  jwt.ClaimStrings{"sip:trunk.example.net"},
			IssuedAt:  jwt.NewNumericDate(t0),
			NotBefore: jwt.NewNumericDate(t0),
			ExpiresAt: jwt.NewNumericDate(t0.Add(10 * time.Minute)),
			ID:        "j1",
		},
		CID: "acme",
		SIP: SIPGrant{Methods: []string{"REGISTER", "INVITE"}},
	}
}

// wantErr checks err against want with errors.Is; a nil want means success.
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("got error %v, want success", err)
	case want != nil && err == nil:
		t.Fatalf("got success, want %v", want)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("got error %v, want one matching %v", err, want)
	}
}

// isErr is errors.Is for conditions.
func isErr(err, target error) bool { return errors.Is(err, target) }

// nonCanonical re-encodes the last character of token's signature with a
// different value of the padding bits base64 ignores: the same signature
// bytes in another spelling.
func nonCanonical(t testing.TB, token string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := len(token) - 1
	c := strings.IndexByte(alphabet, token[i])
	if c < 0 {
		t.Fatalf("token does not end in base64url: %q", token)
	}
	return token[:i] + string(alphabet[c^1])
}
