package edsign

import (
	"runtime"
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Encoding R = r·B takes the inverse of its Z coordinate. Signatures made
// at the same time share one inversion (Montgomery's trick: invert the
// product of the Zs, then peel each inverse off with three
// multiplications), so a busy issuer pays for a fraction of an inversion
// per signature. Nobody waits for a batch to fill: the first signer of a
// batch yields once, so that signers already runnable can join, and then
// encodes whatever has arrived.
//
// A yield that gathers nobody is not free: with an idle processor, the
// scheduler may resume the signer on another core, away from its cached
// tables (a serial signer measured 30 % slower). So the leader yields only
// while yields pay: after one that gathered nobody it skips the next 1, 2,
// 4 … up to maxSkippedYields leaders' yields, and a yield that gathers
// another signer resets the count.

// commitment is one signer's R waiting for its encoding.
type commitment struct {
	x, y, z field.Element
	encoded [32]byte
	done    chan struct{} // receives once encoded, unless this signer encoded the batch
}

var commitmentPool = sync.Pool{New: func() any { return &commitment{done: make(chan struct{}, 1)} }}

// encoder gathers the commitments of concurrent signers.
type encoder struct {
	mu      sync.Mutex
	queue   []*commitment
	spare   []*commitment
	running bool // a signer is encoding batches
	skip    int  // leaders left that encode without yielding
	backoff int  // how many the next fruitless yield makes skip

	batches, encoded uint64 // how many batches, how many commitments in them
}

// encode writes the encoding of R into a commitment and returns it; the
// caller puts it back in commitmentPool.
func (e *encoder) encode(R *edwards25519.Point) *commitment {
	c := commitmentPool.Get().(*commitment)
	X, Y, Z, _ := R.ExtendedCoordinates()
	c.x, c.y, c.z = *X, *Y, *Z
	e.mu.Lock()
	e.queue = append(e.queue, c)
	if e.running {
		e.mu.Unlock()
		<-c.done
		return c
	}
	e.running = true
	yielded := e.skip == 0
	if !yielded {
		e.skip--
	}
	e.mu.Unlock()
	if yielded {
		runtime.Gosched() // let runnable signers reach this point
	}
	for {
		e.mu.Lock()
		batch := e.queue
		if yielded {
			e.learn(len(batch) > 1)
			yielded = false
		}
		if len(batch) == 0 {
			e.running = false
			e.mu.Unlock()
			return c
		}
		e.queue, e.spare = e.spare[:0], nil
		e.batches++
		e.encoded += uint64(len(batch))
		e.mu.Unlock()
		encodeBatch(batch)
		for _, o := range batch {
			if o != c {
				o.done <- struct{}{}
			}
		}
		clear(batch)
		e.mu.Lock()
		e.spare = batch[:0]
		e.mu.Unlock()
	}
}

// maxSkippedYields bounds how many leaders in a row encode without
// yielding once yields have stopped gathering other signers.
const maxSkippedYields = 64

// learn records whether a yield gathered other signers. The caller holds
// e.mu.
func (e *encoder) learn(gathered bool) {
	if gathered {
		e.backoff = 0
		return
	}
	e.backoff = min(max(2*e.backoff, 1), maxSkippedYields)
	e.skip = e.backoff
}

// encodeBatch encodes every commitment of batch with one field inversion.
func encodeBatch(batch []*commitment) {
	// prefix[i] = z_0 · … · z_i
	prefix := make([]field.Element, len(batch))
	prefix[0] = batch[0].z
	for i := 1; i < len(batch); i++ {
		prefix[i].Multiply(&prefix[i-1], &batch[i].z)
	}
	var inv, zInv, x, y field.Element
	inv.Invert(&prefix[len(batch)-1]) // 1 / (z_0 · … · z_n)
	for i := len(batch) - 1; i >= 0; i-- {
		c := batch[i]
		if i > 0 {
			zInv.Multiply(&inv, &prefix[i-1]) // 1 / z_i
			inv.Multiply(&inv, &c.z)          // 1 / (z_0 · … · z_{i-1})
		} else {
			zInv = inv
		}
		x.Multiply(&c.x, &zInv)
		y.Multiply(&c.y, &zInv)
		copy(c.encoded[:], y.Bytes())
		c.encoded[31] |= byte(x.IsNegative() << 7)
	}
}
