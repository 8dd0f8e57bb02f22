package issuer

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/edsign"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// state is an immutable snapshot of everything a token request reads.
// Writers build a new one and swap it in after the store has the change.
type state struct {
	customers  map[string]*store.Customer
	secrets    map[string]secretEntry
	byCustomer map[string][]chain.Secret // newest first
	edges      map[string]store.EdgeClient
	keys       []*chain.SigningKey // published: next, active, retired
	active     *chain.SigningKey
	signer     *chain.SigningKey // active, with an Ed25519 key expanded for edsign
	keySet     chain.KeySet
	jwks       []byte
	origins    map[string]bool // union of every customer's origins
}

type secretEntry struct {
	meta   store.Secret // Sealed cleared
	secret chain.Secret
}

var _ chain.Keyring = (*state)(nil)

// SecretByID implements chain.Keyring.
func (s *state) SecretByID(id string) (chain.Secret, bool) {
	e, ok := s.secrets[id]
	return e.secret, ok
}

// SecretsOf implements chain.Keyring.
func (s *state) SecretsOf(customer string) []chain.Secret { return s.byCustomer[customer] }

// clone copies the maps so a writer can change them.
func (s *state) clone() *state {
	n := *s
	n.customers = maps.Clone(s.customers)
	n.secrets = maps.Clone(s.secrets)
	n.edges = maps.Clone(s.edges)
	n.keys = slices.Clone(s.keys)
	return &n
}

// derive recomputes the indexes from customers, secrets and keys.
func (s *state) derive() error {
	s.byCustomer = map[string][]chain.Secret{}
	ids := slices.Sorted(maps.Keys(s.secrets))
	for _, id := range ids {
		e := s.secrets[id]
		s.byCustomer[e.secret.Customer] = append(s.byCustomer[e.secret.Customer], e.secret)
	}
	for c, list := range s.byCustomer {
		slices.SortStableFunc(list, func(a, b chain.Secret) int {
			return s.secrets[b.ID].meta.CreatedAt.Compare(s.secrets[a.ID].meta.CreatedAt)
		})
		s.byCustomer[c] = list
	}
	s.origins = map[string]bool{}
	for _, c := range s.customers {
		for _, o := range c.Origins {
			s.origins[o] = true
		}
	}
	// Publish in a stable order: active, next, then retired, newest first.
	rank := map[chain.KeyState]int{chain.KeyActive: 0, chain.KeyNext: 1, chain.KeyRetired: 2}
	slices.SortStableFunc(s.keys, func(a, b *chain.SigningKey) int {
		if rank[a.State] != rank[b.State] {
			return rank[a.State] - rank[b.State]
		}
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	s.active, s.signer = nil, nil
	for _, k := range s.keys {
		if k.State == chain.KeyActive {
			s.active, s.signer = k, k
		}
	}
	if s.active != nil {
		if priv, ok := s.active.Private.(ed25519.PrivateKey); ok {
			fast, err := edsign.New(priv)
			if err != nil {
				return fmt.Errorf("signing key %s: %w", s.active.ID, err)
			}
			k := *s.active
			k.Private = fast
			s.signer = &k
		}
	}
	s.keySet = chain.KeySetOf(s.keys...)
	doc, err := chain.PublicJWKS(s.keys)
	if err != nil {
		return err
	}
	s.jwks, err = json.Marshal(doc)
	return err
}
