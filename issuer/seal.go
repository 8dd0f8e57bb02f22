package issuer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealer encrypts values at rest with AES-256-GCM under the master key,
// binding each to its record ("secret/<id>", "key/<id>") as additional data
// so a sealed value cannot be moved to another record.
type sealer struct{ aead cipher.AEAD }

func newSealer(masterKey []byte) (*sealer, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("%w: master key must be 32 bytes, got %d", ErrConfig, len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plaintext []byte, record string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, []byte(record))
}

var errUnseal = errors.New("cannot decrypt: wrong master key or damaged record")

func (s *sealer) open(sealed []byte, record string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("%s: %w", record, errUnseal)
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(record))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", record, errUnseal)
	}
	return out, nil
}
