package boltstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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

func TestBoltContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func TestUsedJTIStaysUsedAfterReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if ok, err := s.UseJTI(ctx, "acme/j1", time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if ok, err := s.UseJTI(ctx, "acme/j1", time.Now().Add(time.Hour)); ok || err != nil {
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
