package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MasterKeySize is the size in bytes of the master key that encrypts
// secrets at rest (AES-256).
const MasterKeySize = 32

// Secret returns a secret value: the value of the environment variable
// envName if it is set and not empty, else the contents of file (without
// its trailing newline) if file is not empty, else nil. Reading an
// unreadable or empty file is an error that names the file; the error never
// contains the secret.
func Secret(envName, file string) ([]byte, error) {
	if envName != "" {
		if v, ok := os.LookupEnv(envName); ok && v != "" {
			return []byte(v), nil
		}
	}
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: read secret file %s: %w", file, err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("config: secret file %s is empty", file)
	}
	return b, nil
}

// MasterKey returns the master key from the environment variable envName
// or from file, as [Secret] finds it, decoded with [DecodeMasterKey]. It
// returns nil and no error when neither is set; the caller decides whether
// that is acceptable.
func MasterKey(envName, file string) ([]byte, error) {
	raw, err := Secret(envName, file)
	if err != nil || raw == nil {
		return nil, err
	}
	key, err := DecodeMasterKey(raw)
	if err != nil {
		from := "environment variable " + envName
		if v, ok := os.LookupEnv(envName); !ok || v == "" {
			from = "file " + file
		}
		return nil, fmt.Errorf("%w (from %s)", err, from)
	}
	return key, nil
}

// ErrMasterKey is the error returned for a master key that is not base64
// of exactly MasterKeySize bytes.
var ErrMasterKey = errors.New("config: master key must be base64 of 32 bytes")

// DecodeMasterKey decodes the text of a master key: standard or URL-safe
// base64, padded or not, of exactly MasterKeySize bytes; blanks around it
// are ignored. Errors wrap [ErrMasterKey] and never contain the key.
func DecodeMasterKey(text []byte) ([]byte, error) {
	s := strings.TrimSpace(string(text))
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != MasterKeySize {
			return nil, fmt.Errorf("%w, got %d bytes", ErrMasterKey, len(key))
		}
		return key, nil
	}
	return nil, fmt.Errorf("%w: not valid base64", ErrMasterKey)
}
