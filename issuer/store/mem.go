package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store held in memory only: for tests and throw-away demos.
// Nothing survives the process.
type Memory struct {
	mu        sync.Mutex
	customers map[string]Customer
	secrets   map[string]Secret
	keys      map[string]Key
	edges     map[string]EdgeClient
	jtis      map[string]time.Time
	revoked   map[string]time.Time
	audit     []AuditEntry
	meta      map[string][]byte
	closed    bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		customers: map[string]Customer{},
		secrets:   map[string]Secret{},
		keys:      map[string]Key{},
		edges:     map[string]EdgeClient{},
		jtis:      map[string]time.Time{},
		revoked:   map[string]time.Time{},
		meta:      map[string][]byte{},
	}
}

func (m *Memory) lock() (func(), error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("memory store: closed")
	}
	return m.mu.Unlock, nil
}

func (m *Memory) appendAudit(a *AuditEntry) {
	if a == nil {
		return
	}
	e := *a
	e.Seq = uint64(len(m.audit)) + 1
	m.audit = append(m.audit, e)
}

// CreateCustomer implements Store.
func (m *Memory) CreateCustomer(_ context.Context, c Customer, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.customers[c.ID]; ok {
		return fmt.Errorf("customer %q: %w", c.ID, ErrConflict)
	}
	m.customers[c.ID] = c
	m.appendAudit(a)
	return nil
}

// UpdateCustomer implements Store.
func (m *Memory) UpdateCustomer(_ context.Context, c Customer, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.customers[c.ID]; !ok {
		return fmt.Errorf("customer %q: %w", c.ID, ErrNotFound)
	}
	m.customers[c.ID] = c
	m.appendAudit(a)
	return nil
}

// DeleteCustomer implements Store.
func (m *Memory) DeleteCustomer(_ context.Context, id string, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.customers[id]; !ok {
		return fmt.Errorf("customer %q: %w", id, ErrNotFound)
	}
	delete(m.customers, id)
	for sid, s := range m.secrets {
		if s.Customer == id {
			delete(m.secrets, sid)
		}
	}
	m.appendAudit(a)
	return nil
}

// Customers implements Store.
func (m *Memory) Customers(context.Context) ([]Customer, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return sortedValues(m.customers), nil
}

// CreateSecret implements Store.
func (m *Memory) CreateSecret(_ context.Context, s Secret, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.customers[s.Customer]; !ok {
		return fmt.Errorf("customer %q: %w", s.Customer, ErrNotFound)
	}
	if _, ok := m.secrets[s.ID]; ok {
		return fmt.Errorf("secret %q: %w", s.ID, ErrConflict)
	}
	s.Sealed = slices.Clone(s.Sealed)
	m.secrets[s.ID] = s
	m.appendAudit(a)
	return nil
}

// UpdateSecret implements Store.
func (m *Memory) UpdateSecret(_ context.Context, s Secret, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.secrets[s.ID]; !ok {
		return fmt.Errorf("secret %q: %w", s.ID, ErrNotFound)
	}
	s.Sealed = slices.Clone(s.Sealed)
	m.secrets[s.ID] = s
	m.appendAudit(a)
	return nil
}

// Secrets implements Store.
func (m *Memory) Secrets(context.Context) ([]Secret, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return sortedValues(m.secrets), nil
}

// PutKeys implements Store.
func (m *Memory) PutKeys(_ context.Context, put []Key, del []string, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	for _, k := range put {
		k.Sealed = slices.Clone(k.Sealed)
		m.keys[k.ID] = k
	}
	for _, id := range del {
		delete(m.keys, id)
	}
	m.appendAudit(a)
	return nil
}

// Keys implements Store.
func (m *Memory) Keys(context.Context) ([]Key, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := sortedValues(m.keys)
	slices.SortStableFunc(out, func(a, b Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// CreateEdgeClient implements Store.
func (m *Memory) CreateEdgeClient(_ context.Context, e EdgeClient, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.edges[e.ID]; ok {
		return fmt.Errorf("edge client %q: %w", e.ID, ErrConflict)
	}
	m.edges[e.ID] = e
	m.appendAudit(a)
	return nil
}

// DeleteEdgeClient implements Store.
func (m *Memory) DeleteEdgeClient(_ context.Context, id string, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.edges[id]; !ok {
		return fmt.Errorf("edge client %q: %w", id, ErrNotFound)
	}
	delete(m.edges, id)
	m.appendAudit(a)
	return nil
}

// EdgeClients implements Store.
func (m *Memory) EdgeClients(context.Context) ([]EdgeClient, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return sortedValues(m.edges), nil
}

// UseJTI implements Store.
func (m *Memory) UseJTI(_ context.Context, id string, exp time.Time) (bool, error) {
	unlock, err := m.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, ok := m.jtis[id]; ok {
		return false, nil
	}
	m.jtis[id] = exp
	return true, nil
}

// UsedJTIs implements Store.
func (m *Memory) UsedJTIs(context.Context) ([]UsedJTI, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := make([]UsedJTI, 0, len(m.jtis))
	for _, id := range slices.Sorted(maps.Keys(m.jtis)) {
		out = append(out, UsedJTI{ID: id, ExpiresAt: m.jtis[id]})
	}
	return out, nil
}

// PutJTIs implements Store.
func (m *Memory) PutJTIs(_ context.Context, ids []UsedJTI) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	for _, j := range ids {
		if _, ok := m.jtis[j.ID]; !ok {
			m.jtis[j.ID] = j.ExpiresAt
		}
	}
	return nil
}

// Meta implements Store.
func (m *Memory) Meta(_ context.Context, key string) ([]byte, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return slices.Clone(m.meta[key]), nil
}

// SetMeta implements Store.
func (m *Memory) SetMeta(_ context.Context, key string, value []byte) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m.meta[key] = slices.Clone(value)
	return nil
}

// RevokeToken implements Store.
func (m *Memory) RevokeToken(_ context.Context, jti string, exp time.Time, a *AuditEntry) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m.revoked[jti] = exp
	m.appendAudit(a)
	return nil
}

// RevokedTokens implements Store.
func (m *Memory) RevokedTokens(context.Context) ([]RevokedToken, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := make([]RevokedToken, 0, len(m.revoked))
	for _, j := range slices.Sorted(maps.Keys(m.revoked)) {
		out = append(out, RevokedToken{JTI: j, ExpiresAt: m.revoked[j]})
	}
	return out, nil
}

// Purge implements Store.
func (m *Memory) Purge(_ context.Context, now time.Time) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	maps.DeleteFunc(m.jtis, func(_ string, exp time.Time) bool { return exp.Before(now) })
	maps.DeleteFunc(m.revoked, func(_ string, exp time.Time) bool { return exp.Before(now) })
	return nil
}

// Audit implements Store.
func (m *Memory) Audit(_ context.Context, after uint64, limit int) ([]AuditEntry, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []AuditEntry
	for _, e := range m.audit {
		if e.Seq > after {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func sortedValues[V any](m map[string]V) []V {
	keys := slices.SortedFunc(maps.Keys(m), strings.Compare)
	out := make([]V, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}
