package edsign

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"

	"filippo.io/edwards25519"
)

// TestEncodeBatch encodes batches of every size up to 17 with one
// inversion and compares each encoding with the point's own.
func TestEncodeBatch(t *testing.T) {
	for n := 1; n <= 17; n++ {
		batch := make([]*commitment, n)
		want := make([][]byte, n)
		for i := range batch {
			var seed [64]byte
			seed[0], seed[1] = byte(n), byte(i)
			s, err := edwards25519.NewScalar().SetUniformBytes(seed[:])
			if err != nil {
				t.Fatal(err)
			}
			R := new(edwards25519.Point).ScalarBaseMult(s)
			// Projective coordinates other than Z = 1, as ScalarBaseMult
			// leaves them, and also after a doubling.
			if i%2 == 1 {
				R.Add(R, R)
			}
			X, Y, Z, _ := R.ExtendedCoordinates()
			batch[i] = &commitment{x: *X, y: *Y, z: *Z}
			want[i] = R.Bytes()
		}
		encodeBatch(batch)
		for i, c := range batch {
			if !bytes.Equal(c.encoded[:], want[i]) {
				t.Fatalf("batch of %d, point %d: %x, want %x", n, i, c.encoded, want[i])
			}
		}
	}
}

// TestSignConcurrently signs from many goroutines at once, so that batches
// form, and checks every signature against crypto/ed25519's.
func TestSignConcurrently(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	k, err := New(priv)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 20 {
				msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
				sig, err := k.Sign(nil, msg, crypto.Hash(0))
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(sig, ed25519.Sign(priv, msg)) {
					t.Errorf("goroutine %d message %d: signature differs from crypto/ed25519's", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	e := &k.encoder
	if e.running || len(e.queue) != 0 {
		t.Fatalf("encoder left running=%v with %d queued", e.running, len(e.queue))
	}
	if e.encoded != 32*20 || e.batches >= e.encoded {
		t.Fatalf("%d signatures in %d batches; want 640 signatures in fewer batches", e.encoded, e.batches)
	}
	t.Logf("%d signatures in %d batches", e.encoded, e.batches)
}

// TestYieldBackoff shows that fruitless yields make the next leaders skip
// theirs, 1, 2, 4 … up to maxSkippedYields of them, and that a yield that
// gathers another signer ends the skipping.
func TestYieldBackoff(t *testing.T) {
	var e encoder
	for _, want := range []int{1, 2, 4, 8, 16, 32, 64, 64} {
		e.learn(false)
		if e.skip != want {
			t.Fatalf("skip = %d after a fruitless yield, want %d", e.skip, want)
		}
		e.skip = 0 // the skipped leaders have passed
	}
	e.learn(true)
	e.learn(false)
	if e.skip != 1 {
		t.Fatalf("skip = %d after a gathering yield and a fruitless one, want 1", e.skip)
	}
}

// TestSerialSignerStopsYielding signs from one goroutine: its yields
// gather nobody, so most of its signatures are encoded without one.
func TestSerialSignerStopsYielding(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	k, err := New(priv)
	if err != nil {
		t.Fatal(err)
	}
	yields := 0
	for range 200 {
		if k.encoder.skip == 0 {
			yields++
		}
		if _, err := k.Sign(nil, []byte("m"), crypto.Hash(0)); err != nil {
			t.Fatal(err)
		}
	}
	if yields > 20 {
		t.Fatalf("%d of 200 serial signatures yielded", yields)
	}
}
