// Package boltstore is the default issuer store, on go.etcd.io/bbolt: one
// file, every write fsynced before it is acknowledged.
//
// Used assertion jti values are written one of two ways, as the issuer's
// jti mode asks. UseJTI writes with bolt's Batch: concurrent token
// requests share one transaction and one fsync, so a token waits for a
// group commit rather than an fsync of its own, and a jti is durable
// before the token it admits is returned. PutJTIs writes the ids a group
// writer collected in a few records of up to 4096 ids each.
package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/trunkpass/trunkpass/issuer/store"
)

var (
	bCustomers = []byte("customers")
	bSecrets   = []byte("secrets")
	bKeys      = []byte("keys")
	bEdges     = []byte("edges")
	bJTI       = []byte("used_jti")
	bJTIGroups = []byte("used_jti_groups")
	bJTIOld    = []byte("jti")
	bRevoked   = []byte("revoked")
	bAudit     = []byte("audit")
	bMeta      = []byte("meta")
	allBuckets = [][]byte{bCustomers, bSecrets, bKeys, bEdges, bJTI, bJTIGroups, bRevoked, bAudit, bMeta}
)

// FileName is the name of the database file in the data directory.
const FileName = "issuer.db"

// Store is a store.Store in a bolt database.
type Store struct {
	db *bolt.DB
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in directory dir, which is
// created with mode 0700 if absent.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	// Batch: a short window lets concurrent token requests share a commit.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return migrateJTIs(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: create buckets: %w", err)
	}
	return &Store{db: db}, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

func appendAudit(tx *bolt.Tx, a *store.AuditEntry) error {
	if a == nil {
		return nil
	}
	b := tx.Bucket(bAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	e := *a
	e.Seq = seq
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
}

func list[T any](db *bolt.DB, bucket []byte) ([]T, error) {
	var out []T
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
			}
			out = append(out, x)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: list %s: %w", bucket, err)
	}
	return out, nil
}

func (s *Store) update(what string, fn func(tx *bolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("boltstore: %s: %w", what, err)
	}
	return nil
}

// CreateCustomer implements store.Store.
func (s *Store) CreateCustomer(_ context.Context, c store.Customer, a *store.AuditEntry) error {
	return s.update("create customer", func(tx *bolt.Tx) error {
		if tx.Bucket(bCustomers).Get([]byte(c.ID)) != nil {
			return fmt.Errorf("customer %q: %w", c.ID, store.ErrConflict)
		}
		if err := put(tx, bCustomers, c.ID, c); err != nil {
			return err
		}
		return appendAudit(tx, a)
	})
}

// UpdateCustomer implements store.Store.
func (s *Store) UpdateCustomer(_ context.Context, c store.Customer, a *store.AuditEntry) error {
	return s.update("update customer", func(tx *bolt.Tx) error {
		if tx.Bucket(bCustomers).Get([]byte(c.ID)) == nil {
			return fmt.Errorf("customer %q: %w", c.ID, store.ErrNotFound)
		}
		if err := put(tx, bCustomers, c.ID, c); err != nil {
			return err
		}
		return appendAudit(tx, a)
	})
}

// DeleteCustomer implements store.Store.
func (s *Store) DeleteCustomer(_ context.Context, id string, a *store.AuditEntry) error {
	return s.update("delete customer", func(tx *bolt.Tx) error {
		cb := tx.Bucket(bCustomers)
		if cb.Get([]byte(id)) == nil {
			return fmt.Errorf("customer %q: %w", id, store.ErrNotFound)
		}
		if err := cb.Delete([]byte(id)); err != nil {
			return err
		}
		sb := tx.Bucket(bSecrets)
		var del [][]byte
		err := sb.ForEach(func(k, v []byte) error {
			var sec store.Secret
			if err := json.Unmarshal(v, &sec); err != nil {
				return err
			}
			if sec.Customer == id {
				del = append(del, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range del {
			if err := sb.Delete(k); err != nil {
				return err
			}
		}
		return appendAudit(tx, a)
	})
}

// Customers implements store.Store.
func (s *Store) Customers(context.Context) ([]store.Customer, error) {
	return list[store.Customer](s.db, bCustomers)
}

// CreateSecret implements store.Store.
func (s *Store) CreateSecret(_ context.Context, sec store.Secret, a *store.AuditEntry) error {
	return s.update("create secret", func(tx *bolt.Tx) error {
		if tx.Bucket(bCustomers).Get([]byte(sec.Customer)) == nil {
			return fmt.Errorf("customer %q: %w", sec.Customer, store.ErrNotFound)
		}
		if tx.Bucket(bSecrets).Get([]byte(sec.ID)) != nil {
			return fmt.Errorf("secret %q: %w", sec.ID, store.ErrConflict)
		}
		if err := put(tx, bSecrets, sec.ID, sec); err != nil {
			return err
		}
		return appendAudit(tx, a)
	})
}

// UpdateSecret implements store.Store.
func (s *Store) UpdateSecret(_ context.Context, sec store.Secret, a *store.AuditEntry) error {
	return s.update("update secret", func(tx *bolt.Tx) error {
		if tx.Bucket(bSecrets).Get([]byte(sec.ID)) == nil {
			return fmt.Errorf("secret %q: %w", sec.ID, store.ErrNotFound)
		}
		if err := put(tx, bSecrets, sec.ID, sec); err != nil {
			return err
		}
		return appendAudit(tx, a)
	})
}

// Secrets implements store.Store.
func (s *Store) Secrets(context.Context) ([]store.Secret, error) {
	return list[store.Secret](s.db, bSecrets)
}

// PutKeys implements store.Store.
func (s *Store) PutKeys(_ context.Context, keys []store.Key, del []string, a *store.AuditEntry) error {
	return s.update("put keys", func(tx *bolt.Tx) error {
		for _, k := range keys {
			if err := put(tx, bKeys, k.ID, k); err != nil {
				return err
			}
		}
		for _, id := range del {
			if err := tx.Bucket(bKeys).Delete([]byte(id)); err != nil {
				return err
			}
		}
		return appendAudit(tx, a)
	})
}

// Keys implements store.Store.
func (s *Store) Keys(context.Context) ([]store.Key, error) {
	keys, err := list[store.Key](s.db, bKeys)
	slices.SortStableFunc(keys, func(a, b store.Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return keys, err
}

// CreateEdgeClient implements store.Store.
func (s *Store) CreateEdgeClient(_ context.Context, e store.EdgeClient, a *store.AuditEntry) error {
	return s.update("create edge client", func(tx *bolt.Tx) error {
		if tx.Bucket(bEdges).Get([]byte(e.ID)) != nil {
			return fmt.Errorf("edge client %q: %w", e.ID, store.ErrConflict)
		}
		if err := put(tx, bEdges, e.ID, e); err != nil {
			return err
		}
		return appendAudit(tx, a)
	})
}

// DeleteEdgeClient implements store.Store.
func (s *Store) DeleteEdgeClient(_ context.Context, id string, a *store.AuditEntry) error {
	return s.update("delete edge client", func(tx *bolt.Tx) error {
		b := tx.Bucket(bEdges)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("edge client %q: %w", id, store.ErrNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		return appendAudit(tx, a)
	})
}

// EdgeClients implements store.Store.
func (s *Store) EdgeClients(context.Context) ([]store.EdgeClient, error) {
	return list[store.EdgeClient](s.db, bEdges)
}

func unixBytes(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.Unix())) }

func expired(v []byte, now time.Time) bool {
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < now.Unix()
}

// Ids UseJTI writes (bucket "used_jti") are keyed by expiry, then id: the
// 8-byte big-endian jtiSecond of exp followed by the id, with an empty
// value. Ids arrive in nearly increasing expiry, so a commit appends to
// the last pages of the tree instead of rewriting one random leaf page per
// id, and a purge deletes from the front until the first live key instead
// of scanning every id. A replayed credential repeats its exp with its id,
// so the pair is what identifies it.
func jtiKey(id string, exp time.Time) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), jtiSecond(exp)), id...)
}

// jtiSecond is exp as stored: its Unix second, 0 for any time before 1970.
func jtiSecond(exp time.Time) uint64 { return uint64(max(exp.Unix(), 0)) }

// migrateJTIs moves ids from the first layout (bucket "jti": id → exp)
// to the expiry-ordered one, once.
func migrateJTIs(tx *bolt.Tx) error {
	old := tx.Bucket(bJTIOld)
	if old == nil {
		return nil
	}
	b := tx.Bucket(bJTI)
	if err := old.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("jti %q: bad expiry", k)
		}
		return b.Put(append(slices.Clone(v), k...), nil)
	}); err != nil {
		return fmt.Errorf("migrate used jtis: %w", err)
	}
	return tx.DeleteBucket(bJTIOld)
}

// UseJTI implements store.Store with bolt's Batch: the check and the put
// run in one write transaction shared with concurrent callers, and the
// call returns after that transaction is committed and fsynced. Batch may
// run fn again after a failed batch; fn sets fresh on every run, so the
// last run decides.
func (s *Store) UseJTI(_ context.Context, id string, exp time.Time) (bool, error) {
	key := jtiKey(id, exp)
	var fresh bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bJTI)
		// Values are empty, and Get answers nil for an empty value: seek.
		if k, _ := b.Cursor().Seek(key); bytes.Equal(k, key) {
			fresh = false
			return nil
		}
		fresh = true
		return b.Put(key, nil)
	})
	if err != nil {
		return false, fmt.Errorf("boltstore: use jti: %w", err)
	}
	return fresh, nil
}

// UsedJTIs implements store.Store.
func (s *Store) UsedJTIs(context.Context) ([]store.UsedJTI, error) {
	var out []store.UsedJTI
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bJTI).ForEach(func(k, _ []byte) error {
			if len(k) < 8 {
				return fmt.Errorf("jti key %x: too short", k)
			}
			out = append(out, store.UsedJTI{ID: string(k[8:]), ExpiresAt: time.Unix(int64(binary.BigEndian.Uint64(k)), 0)})
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bJTIGroups).ForEach(func(k, v []byte) error {
			var err error
			if out, err = appendJTIGroup(out, v); err != nil {
				return fmt.Errorf("jti group %x: %w", k, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: used jtis: %w", err)
	}
	return out, nil
}

// jtiGroupSize bounds the ids in one group record, so that a purge frees
// a group soon after its own ids expire.
const jtiGroupSize = 4096

// PutJTIs implements store.Store. The ids go in group records (bucket
// "used_jti_groups"), not one key each: a commit of n ids is n/4096 puts
// of one contiguous value instead of n tree inserts, and a purge deletes
// a record at a time. Ids are sorted by expiry and cut into groups; a
// group is keyed by the last expiry in it (8-byte big-endian Unix second,
// as jtiKey) then an 8-byte sequence number, so a purge deletes from the
// front while the key's expiry has passed, and no id is forgotten before
// its own expiry. The value is encodeJTIGroup's.
func (s *Store) PutJTIs(_ context.Context, ids []store.UsedJTI) error {
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b store.UsedJTI) int { return cmp.Compare(jtiSecond(a.ExpiresAt), jtiSecond(b.ExpiresAt)) })
	return s.update("put jtis", func(tx *bolt.Tx) error {
		b := tx.Bucket(bJTIGroups)
		b.FillPercent = 1
		for group := range slices.Chunk(sorted, jtiGroupSize) {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			key := binary.BigEndian.AppendUint64(make([]byte, 0, 16), jtiSecond(group[len(group)-1].ExpiresAt))
			if err := b.Put(binary.BigEndian.AppendUint64(key, seq), encodeJTIGroup(group)); err != nil {
				return err
			}
		}
		return nil
	})
}

// encodeJTIGroup is the value of a group record: for each id, its expiry
// as jtiSecond, its length as a uvarint and its bytes.
func encodeJTIGroup(group []store.UsedJTI) []byte {
	size := 0
	for _, j := range group {
		size += 8 + binary.MaxVarintLen64 + len(j.ID)
	}
	v := make([]byte, 0, size)
	for _, j := range group {
		v = binary.BigEndian.AppendUint64(v, jtiSecond(j.ExpiresAt))
		v = binary.AppendUvarint(v, uint64(len(j.ID)))
		v = append(v, j.ID...)
	}
	return v
}

// appendJTIGroup decodes a group record written by PutJTIs onto out.
func appendJTIGroup(out []store.UsedJTI, v []byte) ([]store.UsedJTI, error) {
	for len(v) > 0 {
		if len(v) < 8 {
			return out, fmt.Errorf("truncated expiry")
		}
		exp := binary.BigEndian.Uint64(v)
		if exp > math.MaxInt64 {
			return out, fmt.Errorf("expiry %d out of range", exp)
		}
		n, w := binary.Uvarint(v[8:])
		if w <= 0 || n > uint64(len(v)-8-w) {
			return out, fmt.Errorf("bad id length")
		}
		v = v[8+w:]
		out = append(out, store.UsedJTI{ID: string(v[:n]), ExpiresAt: time.Unix(int64(exp), 0)})
		v = v[n:]
	}
	return out, nil
}

// Meta implements store.Store.
func (s *Store) Meta(_ context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v = slices.Clone(tx.Bucket(bMeta).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: meta %s: %w", key, err)
	}
	return v, nil
}

// SetMeta implements store.Store.
func (s *Store) SetMeta(_ context.Context, key string, value []byte) error {
	return s.update("set meta", func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte(key), value) })
}

// RevokeToken implements store.Store.
func (s *Store) RevokeToken(_ context.Context, jti string, exp time.Time, a *store.AuditEntry) error {
	return s.update("revoke token", func(tx *bolt.Tx) error {
		if err := tx.Bucket(bRevoked).Put([]byte(jti), unixBytes(exp)); err != nil {
			return err
		}
		return appendAudit(tx, a)
	})
}

// RevokedTokens implements store.Store.
func (s *Store) RevokedTokens(context.Context) ([]store.RevokedToken, error) {
	var out []store.RevokedToken
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bRevoked).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("revoked %q: bad expiry", k)
			}
			out = append(out, store.RevokedToken{JTI: string(k), ExpiresAt: time.Unix(int64(binary.BigEndian.Uint64(v)), 0)})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: revoked tokens: %w", err)
	}
	return out, nil
}

// purgeBatch bounds the used ids one purge transaction deletes, so that a
// purge of many ids (a minute at 10 000 tokens/s is 600 000) does not hold
// bolt's single writer for long: token commits and admin writes wait for it.
const purgeBatch = 10_000

// Purge implements store.Store.
func (s *Store) Purge(_ context.Context, now time.Time) error {
	// Used ids and groups of them: from the front, until the first key
	// whose expiry is still live.
	for _, bucket := range [][]byte{bJTI, bJTIGroups} {
		for {
			var n int
			err := s.update("purge jtis", func(tx *bolt.Tx) error {
				n = 0
				c := tx.Bucket(bucket).Cursor()
				for k, _ := c.First(); len(k) >= 8 && n < purgeBatch && int64(binary.BigEndian.Uint64(k)) < now.Unix(); k, _ = c.First() {
					if err := c.Delete(); err != nil {
						return err
					}
					n++
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n < purgeBatch {
				break
			}
		}
	}
	return s.update("purge revoked tokens", func(tx *bolt.Tx) error {
		b := tx.Bucket(bRevoked)
		var del [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			if expired(v, now) {
				del = append(del, slices.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Audit implements store.Store.
func (s *Store) Audit(_ context.Context, after uint64, limit int) ([]store.AuditEntry, error) {
	var out []store.AuditEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		start := binary.BigEndian.AppendUint64(nil, after+1)
		for k, v := c.Seek(start); k != nil; k, v = c.Next() {
			if bytes.Compare(k, start) < 0 {
				continue
			}
			var e store.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit %x: %w", k, err)
			}
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: audit: %w", err)
	}
	return out, nil
}
