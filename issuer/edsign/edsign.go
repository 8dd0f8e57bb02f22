// Package edsign signs with Ed25519 (RFC 8032 §5.1.6, pure Ed25519), byte
// for byte as crypto/ed25519 does, at the cost of one field inversion per
// signature instead of two.
//
// crypto/ed25519 (Go 1.26) encodes the commitment point R twice while
// signing, once into the challenge hash and once into the signature, and
// every encoding is a field inversion: about 13 % of a signature. This
// package encodes R once, on filippo.io/edwards25519, the group arithmetic
// crypto/ed25519 itself was taken from (constant time throughout), and Sign
// lets signatures made at the same time share that one inversion (see
// batch.go). Ed25519 signatures are deterministic, so the output is checked
// against crypto/ed25519 on every input the tests and the fuzzer try.
package edsign

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"slices"

	"filippo.io/edwards25519"
)

// ErrKey reports a private key that is not a valid Ed25519 key.
var ErrKey = errors.New("edsign: invalid Ed25519 private key")

// PrivateKey is an expanded Ed25519 private key. It implements
// crypto.Signer; pure Ed25519 is signed here, Ed25519ph and Ed25519ctx
// are passed to crypto/ed25519.
type PrivateKey struct {
	priv   ed25519.PrivateKey // seed and public key, as crypto/ed25519 holds them
	public crypto.PublicKey   // an ed25519.PublicKey, made once
	s      edwards25519.Scalar
	prefix [32]byte

	encoder encoder
}

// New expands priv, a 64-byte crypto/ed25519 private key (seed, then public
// key). It refuses a key whose public half is not the seed's.
func New(priv ed25519.PrivateKey) (*PrivateKey, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrKey, len(priv), ed25519.PrivateKeySize)
	}
	h := sha512.Sum512(priv[:ed25519.SeedSize])
	defer clear(h[:])
	k := &PrivateKey{priv: slices.Clone(priv)}
	if _, err := k.s.SetBytesWithClamping(h[:32]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	copy(k.prefix[:], h[32:])
	pub := new(edwards25519.Point).ScalarBaseMult(&k.s).Bytes()
	if subtle.ConstantTimeCompare(pub, priv[ed25519.SeedSize:]) != 1 {
		return nil, fmt.Errorf("%w: the public half does not belong to the seed", ErrKey)
	}
	k.public = k.priv.Public()
	return k, nil
}

// Public returns the ed25519.PublicKey of k. Like the public key of a
// crypto/ecdsa private key, it is shared: do not modify it.
func (k *PrivateKey) Public() crypto.PublicKey { return k.public }

// Sign signs message with pure Ed25519 when opts asks for no hash and no
// context (crypto.Hash(0), or *ed25519.Options with neither); any other
// opts go to crypto/ed25519, which signs Ed25519ph and Ed25519ctx and
// refuses the rest. rand is not used: Ed25519 is deterministic. Concurrent
// calls encode their commitments in batches with one inversion each; a
// call never waits for others to arrive, it yields the processor once.
func (k *PrivateKey) Sign(rand io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*ed25519.Options); (ok && o.Context != "") || (opts != nil && opts.HashFunc() != crypto.Hash(0)) {
		return k.priv.Sign(rand, message, opts)
	}
	return k.sign(make([]byte, 0, ed25519.SignatureSize), message, true), nil
}

// AppendSign appends the pure Ed25519 signature of message to dst, with an
// inversion of its own.
func (k *PrivateKey) AppendSign(dst, message []byte) []byte {
	return k.sign(dst, message, false)
}

// sign appends the signature of message to dst; batched shares the
// encoding of R with concurrent signers.
func (k *PrivateKey) sign(dst, message []byte, batched bool) []byte {
	var digest [sha512.Size]byte
	h := sha512.New()
	h.Write(k.prefix[:])
	h.Write(message)
	h.Sum(digest[:0])
	var r edwards25519.Scalar
	if _, err := r.SetUniformBytes(digest[:]); err != nil {
		panic("edsign: SetUniformBytes of a SHA-512 digest: " + err.Error())
	}
	R := new(edwards25519.Point).ScalarBaseMult(&r)
	var encodedR []byte
	if batched {
		c := k.encoder.encode(R)
		defer commitmentPool.Put(c)
		encodedR = c.encoded[:]
	} else {
		encodedR = R.Bytes() // the one inversion
	}

	h.Reset()
	h.Write(encodedR)
	h.Write(k.priv[ed25519.SeedSize:])
	h.Write(message)
	h.Sum(digest[:0])
	var c, s edwards25519.Scalar
	if _, err := c.SetUniformBytes(digest[:]); err != nil {
		panic("edsign: SetUniformBytes of a SHA-512 digest: " + err.Error())
	}
	s.MultiplyAdd(&c, &k.s, &r)
	dst = append(dst, encodedR...)
	return append(dst, s.Bytes()...)
}
