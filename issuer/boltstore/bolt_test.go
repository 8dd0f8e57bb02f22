package boltstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/trunkpass/trunkpass/issuer/boltstore"
	"github.com/trunkpass/trunkpass/issuer/store"
	"github.com/trunkpass/trunkpass/issuer/store/storetest"
)

func open(t testing.TB, dir string) *boltstore.Store {
	s, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// updateFile runs fn in one write transaction on the database file in
// dir, with no Store open: how tests lay out data as other versions wrote
// it, or damage it.
func updateFile(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestBoltContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func TestUsedJTIStaysUsedAfterReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	exp := time.Now().Add(time.Hour)
	if ok, err := s.UseJTI(ctx, "acme/j1", exp); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if ok, err := s.UseJTI(ctx, "acme/j1", exp); ok || err != nil {
		t.Fatalf("use after reopen: fresh=%v err=%v, want refused", ok, err)
	}
}

// BenchmarkUseJTI measures the durable once-only check per token with
// concurrent callers: Batch shares one fsync among the callers waiting.
func BenchmarkUseJTI(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	var n atomic.Int64
	exp := time.Now().Add(time.Hour)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.UseJTI(context.Background(), fmt.Sprintf("j%d", n.Add(1)), exp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPutJTIs measures the group writer's cost per used id: commits
// of 500 random ids (what 50 ms bring at 10 000 tokens/s) into a store
// already holding 200 000, with expiries increasing as time passes.
func BenchmarkPutJTIs(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	defer s.Close()
	const group = 500
	exp := time.Now().Add(time.Hour)
	batch := func() []store.UsedJTI {
		ids := make([]store.UsedJTI, group)
		for k := range ids {
			exp = exp.Add(100 * time.Microsecond)
			ids[k] = store.UsedJTI{ID: "acme/" + rand.Text(), ExpiresAt: exp}
		}
		return ids
	}
	for range 200_000 / group {
		if err := s.PutJTIs(ctx, batch()); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ids := batch()
		b.StartTimer()
		if err := s.PutJTIs(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*group), "ns/id")
}

// An empty id and an expiry before 1970 are stored, listed and purged like
// any other (the first layout's keys could not hold them otherwise).
func TestUsedJTIEdgeValues(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	live := time.Now().Add(time.Hour)
	for _, j := range []store.UsedJTI{{ID: "", ExpiresAt: live}, {ID: "old", ExpiresAt: time.Unix(-5, 0)}} {
		if ok, err := s.UseJTI(ctx, j.ID, j.ExpiresAt); !ok || err != nil {
			t.Fatalf("use %q: %v %v", j.ID, ok, err)
		}
	}
	if used, err := s.UsedJTIs(ctx); err != nil || len(used) != 2 {
		t.Fatalf("used = %+v, %v", used, err)
	}
	if err := s.Purge(ctx, time.Unix(0, 0).Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	used, err := s.UsedJTIs(ctx)
	if err != nil || len(used) != 1 || used[0].ID != "" {
		t.Fatalf("after purge: %+v, %v", used, err)
	}
}

// A purge of more expired ids than one purge transaction deletes goes on
// until none is left, and keeps the live ones: ids stored one key each
// (as UseJTI writes them) and ids in group records (PutJTIs) alike. A
// group record goes only when its last id has expired.
func TestPurgeOfManyUsedJTIs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Now()
	expired := func(k int) time.Time { return t0.Add(-time.Duration(1+k%600) * time.Second) }
	const n = 25_000
	updateFile(t, dir, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("used_jti"))
		if err != nil {
			return err
		}
		for k := range n {
			if err := b.Put(append(binary.BigEndian.AppendUint64(nil, uint64(expired(k).Unix())), fmt.Sprint("acme/k", k)...), nil); err != nil {
				return err
			}
		}
		return nil
	})

	s := open(t, dir)
	defer s.Close()
	if ok, err := s.UseJTI(ctx, "acme/live-key", t0.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("UseJTI = %v, %v", ok, err)
	}
	ids := make([]store.UsedJTI, n)
	for k := range ids {
		ids[k] = store.UsedJTI{ID: fmt.Sprint("acme/g", k), ExpiresAt: expired(k)}
	}
	ids = append(ids, store.UsedJTI{ID: "acme/live-group", ExpiresAt: t0.Add(time.Hour)})
	if err := s.PutJTIs(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, t0); err != nil {
		t.Fatal(err)
	}
	used, err := s.UsedJTIs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var live, keysLeft, groupLeft int
	for _, j := range used {
		switch {
		case j.ExpiresAt.After(t0):
			live++
		case strings.HasPrefix(j.ID, "acme/k"):
			keysLeft++
		default:
			groupLeft++
		}
	}
	// The live group id is in the last record, with the 424 ids that
	// expire last: 25 001 ids sorted by expiry make six full records and
	// one of 425.
	if live != 2 || keysLeft != 0 || groupLeft != (n+1)%4096-1 {
		t.Fatalf("after purge: %d live ids (want 2), %d expired one-key ids (want 0), %d expired ids in group records (want %d)",
			live, keysLeft, groupLeft, (n+1)%4096-1)
	}
}

// A data file written before used ids were keyed by expiry (bucket "jti",
// id → 8-byte exp) keeps them: they are moved once, when the store opens.
func TestUsedJTIsOfTheFirstLayoutAreMigrated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	updateFile(t, dir, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("jti"))
		if err != nil {
			return err
		}
		return b.Put([]byte("acme/old"), binary.BigEndian.AppendUint64(nil, uint64(exp.Unix())))
	})

	s := open(t, dir)
	used, err := s.UsedJTIs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(used) != 1 || used[0].ID != "acme/old" || !used[0].ExpiresAt.Equal(exp) {
		t.Fatalf("used after migration = %+v", used)
	}
	if ok, err := s.UseJTI(ctx, "acme/old", exp); ok || err != nil {
		t.Fatalf("migrated jti: fresh=%v err=%v, want refused", ok, err)
	}
	s.Close()
	s = open(t, dir) // a second open finds nothing left to move
	defer s.Close()
	if used, _ := s.UsedJTIs(ctx); len(used) != 1 {
		t.Fatalf("used after reopen = %+v", used)
	}
}

// A damaged group record is an error when the ids are loaded, not a panic
// and not a silently shorter list.
func TestDamagedJTIGroupRecord(t *testing.T) {
	good := append(binary.AppendUvarint(binary.BigEndian.AppendUint64(nil, 1_900_000_000), 6), "acme/a"...)
	for name, v := range map[string][]byte{
		"truncated expiry": good[:5],
		"no length":        good[:8],
		"id cut short":     good[:len(good)-1],
		"length overflows": append(binary.BigEndian.AppendUint64(nil, 1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"trailing bytes":   append(slices.Clone(good), 0, 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			if err := s.PutJTIs(context.Background(), []store.UsedJTI{{ID: "acme/a", ExpiresAt: time.Unix(1_900_000_000, 0)}}); err != nil {
				t.Fatal(err)
			}
			if used, err := s.UsedJTIs(context.Background()); err != nil || len(used) != 1 || used[0].ID != "acme/a" {
				t.Fatalf("intact record: %v, %v", used, err)
			}
			s.Close()
			updateFile(t, dir, func(tx *bolt.Tx) error {
				c := tx.Bucket([]byte("used_jti_groups")).Cursor()
				k, old := c.First()
				if !bytes.Equal(old, good) {
					t.Errorf("record = %x, want %x", old, good)
				}
				return tx.Bucket([]byte("used_jti_groups")).Put(slices.Clone(k), v)
			})
			s = open(t, dir)
			defer s.Close()
			if used, err := s.UsedJTIs(context.Background()); err == nil {
				t.Errorf("damaged record loaded as %v", used)
			}
		})
	}
}
