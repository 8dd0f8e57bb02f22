package chain

import "time"

// Secret is a customer's shared secret with its validity window.
type Secret struct {
	// ID is the secret's id, the kid of assertions signed with it.
	ID string
	// Customer owns the secret.
	Customer string
	// Value is the secret itself.
	Value []byte
	// NotBefore and NotAfter bound when the secret may verify; a zero
	// NotAfter means no end.
	NotBefore, NotAfter time.Time
	// Revoked secrets verify nothing.
	Revoked bool
}

// ValidAt reports whether the secret may verify a credential made at t.
func (s *Secret) ValidAt(t time.Time) bool {
	if s.Revoked || t.Before(s.NotBefore) {
		return false
	}
	return s.NotAfter.IsZero() || t.Before(s.NotAfter)
}

// Keyring finds customer secrets: by id (an assertion's kid) or by
// customer (its iss tag). Implementations are looked up by exact key,
// never by a pattern built from the claim.
type Keyring interface {
	SecretByID(id string) (Secret, bool)
	SecretsOf(customer string) []Secret
}

// StaticKeyring is an in-memory Keyring.
type StaticKeyring []Secret

// SecretByID implements Keyring.
func (k StaticKeyring) SecretByID(id string) (Secret, bool) {
	for _, s := range k {
		if s.ID == id {
			return s, true
		}
	}
	return Secret{}, false
}

// SecretsOf implements Keyring.
func (k StaticKeyring) SecretsOf(customer string) []Secret {
	var out []Secret
	for _, s := range k {
		if s.Customer == customer {
			out = append(out, s)
		}
	}
	return out
}
