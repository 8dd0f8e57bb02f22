package chain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms of edge tokens.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// EdgeAlgorithms is the allow-list of edge-token algorithms.
var EdgeAlgorithms = []string{AlgEdDSA, AlgES256, AlgRS256}

// KeyState is where a signing key is in its rotation.
type KeyState string

// Key states. A next key is published but signs nothing yet; the active
// key signs; a retired key is published until its last token expires.
const (
	KeyNext    KeyState = "next"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
)

// SigningKey is an issuer signing key with its metadata.
type SigningKey struct {
	ID        string
	Alg       string
	Private   crypto.Signer
	State     KeyState
	CreatedAt time.Time
	// RetiredAt is when the key stopped signing; zero unless retired.
	RetiredAt time.Time
}

// GenerateSigningKey makes a new key for alg (EdDSA, ES256 or RS256) whose
// ID is the RFC 7638 thumbprint of its public key.
func GenerateSigningKey(alg string, now time.Time) (*SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("generate signing key %q: %w", alg, ErrAlgorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newSigningKey(alg, priv, KeyNext, now)
}

func newSigningKey(alg string, priv crypto.Signer, state KeyState, now time.Time) (*SigningKey, error) {
	jwk, err := PublicJWK(priv.Public(), alg, "")
	if err != nil {
		return nil, err
	}
	return &SigningKey{ID: jwk.Thumbprint(), Alg: alg, Private: priv, State: state, CreatedAt: now}, nil
}

// MarshalPrivateKey encodes the private key as PKCS #8 DER, for storage
// (the store encrypts it).
func (k *SigningKey) MarshalPrivateKey() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("marshal key %s: %w", k.ID, err)
	}
	return der, nil
}

// ParsePrivateKey decodes a PKCS #8 DER private key and checks it fits alg.
func ParsePrivateKey(alg string, der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s private key: %w", alg, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok || !keyFitsAlg(s.Public(), alg) {
		return nil, fmt.Errorf("private key does not fit %s: %w", alg, ErrAlgorithm)
	}
	return s, nil
}

func keyFitsAlg(pub crypto.PublicKey, alg string) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return alg == AlgEdDSA
	case *ecdsa.PublicKey:
		return alg == AlgES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == AlgRS256 && k.N.BitLen() >= 2048
	}
	return false
}

// signingMethod returns the jwt method of an allowed edge algorithm.
func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA, nil
	case AlgES256:
		return jwt.SigningMethodES256, nil
	case AlgRS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("signing algorithm %q: %w", alg, ErrAlgorithm)
}

// JWK is a public JSON Web Key (RFC 7517) as the issuer publishes it.
// Status is an extension member naming the key's rotation state.
type JWK struct {
	Kty    string `json:"kty"`
	Crv    string `json:"crv,omitempty"`
	X      string `json:"x,omitempty"`
	Y      string `json:"y,omitempty"`
	N      string `json:"n,omitempty"`
	E      string `json:"e,omitempty"`
	Kid    string `json:"kid,omitempty"`
	Use    string `json:"use,omitempty"`
	Alg    string `json:"alg,omitempty"`
	Status string `json:"status,omitempty"`
}

// JWKS is a JSON Web Key Set document.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

var (
	b64       = base64.RawURLEncoding
	b64Strict = base64.RawURLEncoding.Strict()
)

// splitCompact bounds token to max bytes (DefaultMaxTokenSize when zero)
// and returns the positions of the two dots of a compact JWS: exactly three
// segments, none of the first two empty, and no CR or LF anywhere —
// encoding/base64 skips them even in strict mode, so without this check one
// token would have many spellings that verify.
func splitCompact(token string, max int) (dot1, dot2 int, err error) {
	if max == 0 {
		max = DefaultMaxTokenSize
	}
	if len(token) > max {
		return 0, 0, fmt.Errorf("%d bytes: %w", len(token), ErrTooLarge)
	}
	dot1 = strings.IndexByte(token, '.')
	dot2 = strings.LastIndexByte(token, '.')
	if dot1 <= 0 || dot2 <= dot1 || strings.IndexByte(token[dot1+1:dot2], '.') >= 0 || strings.IndexByte(token, '\r') >= 0 || strings.IndexByte(token, '\n') >= 0 {
		return 0, 0, fmt.Errorf("not a compact JWS: %w", ErrMalformed)
	}
	return dot1, dot2, nil
}

// PublicJWK describes a public key as a JWK for alg.
func PublicJWK(pub crypto.PublicKey, alg, kid string) (JWK, error) {
	if !keyFitsAlg(pub, alg) {
		return JWK{}, fmt.Errorf("public key does not fit %s: %w", alg, ErrAlgorithm)
	}
	j := JWK{Kid: kid, Alg: alg, Use: "sig"}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(k)
	case *ecdsa.PublicKey:
		ecdh, err := k.ECDH()
		if err != nil {
			return JWK{}, fmt.Errorf("encode P-256 key: %w", err)
		}
		raw := ecdh.Bytes() // 0x04 || X || Y
		j.Kty, j.Crv = "EC", "P-256"
		j.X, j.Y = b64.EncodeToString(raw[1:33]), b64.EncodeToString(raw[33:65])
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64.EncodeToString(k.N.Bytes())
		j.E = b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	}
	return j, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the key, base64url.
func (j JWK) Thumbprint() string {
	var members string
	switch j.Kty {
	case "OKP":
		members = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, j.Crv, j.X)
	case "EC":
		members = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, j.Crv, j.X, j.Y)
	case "RSA":
		members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, j.E, j.N)
	}
	sum := sha256.Sum256([]byte(members))
	return b64.EncodeToString(sum[:])
}

// PublicKey decodes the JWK into a Go public key. The key must name its
// alg, and that alg must be one of EdgeAlgorithms and fit the key type.
func (j JWK) PublicKey() (crypto.PublicKey, error) {
	var pub crypto.PublicKey
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("jwk %s: Ed25519 x: %w", j.Kid, ErrMalformed)
		}
		pub = ed25519.PublicKey(x)
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("jwk %s: P-256 point: %w", j.Kid, ErrMalformed)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("jwk %s: P-256 point: %w", j.Kid, ErrMalformed)
		}
		pub = k
	case j.Kty == "RSA":
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("jwk %s: RSA modulus or exponent: %w", j.Kid, ErrMalformed)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	default:
		return nil, fmt.Errorf("jwk %s: key type %s/%s: %w", j.Kid, j.Kty, j.Crv, ErrAlgorithm)
	}
	if !keyFitsAlg(pub, j.Alg) {
		return nil, fmt.Errorf("jwk %s: key does not fit alg %q: %w", j.Kid, j.Alg, ErrAlgorithm)
	}
	return pub, nil
}

// PublicJWKS is the JWKS document of keys, with their states.
func PublicJWKS(keys []*SigningKey) (JWKS, error) {
	doc := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		j, err := PublicJWK(k.Private.Public(), k.Alg, k.ID)
		if err != nil {
			return JWKS{}, fmt.Errorf("publish key %s: %w", k.ID, err)
		}
		j.Status = string(k.State)
		doc.Keys = append(doc.Keys, j)
	}
	return doc, nil
}

// VerificationKey is a public key pinned to the one algorithm it verifies.
type VerificationKey struct {
	Alg string
	Key crypto.PublicKey
}

// KeySet maps key IDs to verification keys.
type KeySet map[string]VerificationKey

// ParseJWKS decodes a JWKS document into a KeySet. Keys without kid or alg,
// or with an algorithm outside EdgeAlgorithms, are an error: a verifier
// must never guess a key's algorithm.
func ParseJWKS(data []byte) (KeySet, error) {
	var doc JWKS
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", ErrMalformed)
	}
	set := make(KeySet, len(doc.Keys))
	for _, j := range doc.Keys {
		if j.Kid == "" {
			return nil, fmt.Errorf("jwks key without kid: %w", ErrMalformed)
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pub, err := j.PublicKey()
		if err != nil {
			return nil, err
		}
		set[j.Kid] = VerificationKey{Alg: j.Alg, Key: pub}
	}
	return set, nil
}

// KeySetOf returns the verification keys of signing keys.
func KeySetOf(keys ...*SigningKey) KeySet {
	set := make(KeySet, len(keys))
	for _, k := range keys {
		set[k.ID] = VerificationKey{Alg: k.Alg, Key: k.Private.Public()}
	}
	return set
}
