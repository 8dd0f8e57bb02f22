package chain

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestGenerateSigningKey(t *testing.T) {
	for _, alg := range EdgeAlgorithms {
		t.Run(alg+" keys are generated, stored and parsed back", func(t *testing.T) {
			k := testKey(t, alg)
			if k.Alg != alg || k.ID == "" || !k.CreatedAt.Equal(t0) {
				t.Fatalf("key = %+v", k)
			}
			jwk, err := PublicJWK(k.Private.Public(), alg, "")
			if err != nil {
				t.Fatal(err)
			}
			if jwk.Thumbprint() != k.ID {
				t.Fatalf("ID %s is not the thumbprint %s", k.ID, jwk.Thumbprint())
			}
			der, err := k.MarshalPrivateKey()
			if err != nil {
				t.Fatal(err)
			}
			priv, err := ParsePrivateKey(alg, der)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(priv.Public(), k.Private.Public()) {
				t.Fatal("parsed key differs from the generated one")
			}
			for _, other := range EdgeAlgorithms {
				if other == alg {
					continue
				}
				if _, err := ParsePrivateKey(other, der); !isErr(err, ErrAlgorithm) {
					t.Errorf("ParsePrivateKey(%s) of a %s key = %v, want ErrAlgorithm", other, alg, err)
				}
			}
		})
	}
	t.Run("a new key starts in the next state", func(t *testing.T) {
		k, err := GenerateSigningKey(AlgEdDSA, t0)
		if err != nil {
			t.Fatal(err)
		}
		if k.State != KeyNext {
			t.Fatalf("state = %s, want next", k.State)
		}
	})
	t.Run("an unknown algorithm is refused", func(t *testing.T) {
		for _, alg := range []string{"HS256", "none", "ES384", ""} {
			if _, err := GenerateSigningKey(alg, t0); !isErr(err, ErrAlgorithm) {
				t.Errorf("GenerateSigningKey(%q) = %v, want ErrAlgorithm", alg, err)
			}
		}
	})
	t.Run("garbage is not a private key", func(t *testing.T) {
		if _, err := ParsePrivateKey(AlgEdDSA, []byte("nope")); err == nil {
			t.Fatal("parsed garbage")
		}
	})
	t.Run("a P-384 key does not fit ES256", func(t *testing.T) {
		p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(p384)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParsePrivateKey(AlgES256, der); !isErr(err, ErrAlgorithm) {
			t.Fatalf("ParsePrivateKey = %v, want ErrAlgorithm", err)
		}
	})
}

func TestJWKSRoundTrip(t *testing.T) {
	ed, es, rs := *testKey(t, AlgEdDSA), *testKey(t, AlgES256), *testKey(t, AlgRS256)
	ed.State, es.State, rs.State = KeyActive, KeyNext, KeyRetired
	doc, err := PublicJWKS([]*SigningKey{&ed, &es, &rs})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(`"d"`)) {
		t.Fatalf("JWKS leaks a private member: %s", data)
	}
	var back JWKS
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, doc) {
		t.Fatalf("JWKS JSON round trip: %+v, want %+v", back, doc)
	}
	states := map[string]string{}
	for _, j := range back.Keys {
		states[j.Kid] = j.Status
		if j.Use != "sig" {
			t.Errorf("key %s use = %q", j.Kid, j.Use)
		}
	}
	if states[ed.ID] != "active" || states[es.ID] != "next" || states[rs.ID] != "retired" {
		t.Fatalf("states = %v", states)
	}
	set, err := ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(set, KeySetOf(&ed, &es, &rs)) {
		t.Fatalf("ParseJWKS = %+v, want the keys' own set", set)
	}
}

func TestParseJWKSRefusesKeysItCannotPin(t *testing.T) {
	ed, rs := testKey(t, AlgEdDSA), testKey(t, AlgRS256)
	edJWK, _ := PublicJWK(ed.Private.Public(), AlgEdDSA, "ed")
	rsJWK, _ := PublicJWK(rs.Private.Public(), AlgRS256, "rs")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK := JWK{Kty: "RSA", Kid: "small", Alg: AlgRS256,
		N: b64url(small.N.Bytes()), E: "AQAB"}
	with := func(j JWK, f func(*JWK)) JWK { f(&j); return j }
	tests := []struct {
		name string
		key  any
		want error
	}{
		{"a key without kid", with(edJWK, func(j *JWK) { j.Kid = "" }), ErrMalformed},
		{"a key without alg", with(edJWK, func(j *JWK) { j.Alg = "" }), ErrAlgorithm},
		{"an RSA key claiming EdDSA", with(rsJWK, func(j *JWK) { j.Alg = AlgEdDSA }), ErrAlgorithm},
		{"an Ed25519 key claiming ES256", with(edJWK, func(j *JWK) { j.Alg = AlgES256 }), ErrAlgorithm},
		{"an Ed25519 key claiming HS256", with(edJWK, func(j *JWK) { j.Alg = "HS256" }), ErrAlgorithm},
		{"an RSA key of 1024 bits", smallJWK, ErrAlgorithm},
		{"a symmetric key", map[string]any{"kty": "oct", "kid": "s", "alg": "HS256", "k": "c2VjcmV0"}, ErrAlgorithm},
		{"an Ed25519 key of the wrong length", with(edJWK, func(j *JWK) { j.X = j.X[:20] }), ErrMalformed},
		{"a P-256 point not on the curve", JWK{Kty: "EC", Crv: "P-256", Kid: "bad", Alg: AlgES256,
			X: b64url(make([]byte, 32)), Y: b64url(bytes.Repeat([]byte{1}, 32))}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			data, err := json.Marshal(map[string]any{"keys": []any{tt.key}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseJWKS(data); !isErr(err, tt.want) {
				t.Fatalf("ParseJWKS = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("an encryption key is skipped", func(t *testing.T) {
		enc := with(rsJWK, func(j *JWK) { j.Use = "enc" })
		data, _ := json.Marshal(JWKS{Keys: []JWK{enc, edJWK}})
		set, err := ParseJWKS(data)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := set["rs"]; ok || len(set) != 1 {
			t.Fatalf("set = %v", set)
		}
	})
	t.Run("a document that is not JSON is refused", func(t *testing.T) {
		if _, err := ParseJWKS([]byte("{")); !isErr(err, ErrMalformed) {
			t.Fatalf("ParseJWKS = %v", err)
		}
	})
}

// vectorFile is the shape of the RFC vectors in testdata.
type vectorFile struct {
	JWK        JWK    `json:"jwk"`
	D          string `json:"d"`
	Payload    string `json:"payload"`
	JWS        string `json:"jws"`
	Thumbprint string `json:"thumbprint"`
}

func loadVector(t *testing.T, name string) vectorFile {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRFC7638Thumbprint(t *testing.T) {
	v := loadVector(t, "rfc7638_thumbprint.json")
	if got := v.JWK.Thumbprint(); got != v.Thumbprint {
		t.Fatalf("thumbprint = %s, want %s", got, v.Thumbprint)
	}
	if _, err := v.JWK.PublicKey(); err != nil {
		t.Fatalf("the RFC 7638 key does not decode: %v", err)
	}
}

func TestRFC8037Ed25519Vector(t *testing.T) {
	v := loadVector(t, "rfc8037_a4_ed25519.json")
	pub, err := v.JWK.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(v.JWS, ".")
	if b64url([]byte(v.Payload)) != parts[1] {
		t.Fatalf("payload does not encode to the vector's")
	}
	sig, err := jwt.NewParser().DecodeSegment(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	t.Run("golang-jwt verifies the RFC signature with chain's decoded key", func(t *testing.T) {
		if err := jwt.SigningMethodEdDSA.Verify(parts[0]+"."+parts[1], sig, pub); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a changed payload does not verify", func(t *testing.T) {
		if err := jwt.SigningMethodEdDSA.Verify(parts[0]+"."+b64url([]byte("Example of Ed25519 signing!")), sig, pub); err == nil {
			t.Fatal("verified a changed payload")
		}
	})
	t.Run("signing reproduces the RFC signature byte for byte", func(t *testing.T) {
		seed, err := b64.DecodeString(v.D)
		if err != nil {
			t.Fatal(err)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub.(ed25519.PublicKey)) {
			t.Fatal("d does not belong to x")
		}
		got, err := jwt.SigningMethodEdDSA.Sign(parts[0]+"."+parts[1], priv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, sig) {
			t.Fatalf("signature %s, want %s", b64url(got), parts[2])
		}
		// And through chain's own key type and JWK: the thumbprint of a key
		// built from the seed is that of the published x.
		k, err := newSigningKey(AlgEdDSA, priv, KeyActive, t0)
		if err != nil {
			t.Fatal(err)
		}
		if k.ID != v.JWK.Thumbprint() {
			t.Fatalf("key id %s, want %s", k.ID, v.JWK.Thumbprint())
		}
	})
}

func TestRFC7515ES256Vector(t *testing.T) {
	v := loadVector(t, "rfc7515_a3_es256.json")
	data, err := json.Marshal(JWKS{Keys: []JWK{v.JWK}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	key := set[v.JWK.Kid]
	parse := func(token string, now time.Time) (*jwt.Token, error) {
		return jwt.NewParser(jwt.WithValidMethods([]string{key.Alg}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(clock(now))).
			Parse(token, func(*jwt.Token) (any, error) { return key.Key, nil })
	}
	before := time.Unix(1300819380-60, 0)
	t.Run("golang-jwt verifies the RFC token with chain's decoded key", func(t *testing.T) {
		tok, err := parse(v.JWS, before)
		if err != nil {
			t.Fatal(err)
		}
		if iss, _ := tok.Claims.GetIssuer(); iss != "joe" {
			t.Fatalf("iss = %q", iss)
		}
		if b64url([]byte(v.Payload)) != strings.Split(v.JWS, ".")[1] {
			t.Fatal("payload does not encode to the vector's")
		}
	})
	t.Run("the RFC token is expired after its exp", func(t *testing.T) {
		if _, err := parse(v.JWS, time.Unix(1300819380, 0)); !isErr(err, jwt.ErrTokenExpired) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a changed signature does not verify", func(t *testing.T) {
		bad := strings.Replace(v.JWS, ".DtEh", ".DtEi", 1)
		if _, err := parse(bad, before); !isErr(err, jwt.ErrTokenSignatureInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
}
