package issuer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/trunkpass/trunkpass/issuer/store"
)

// JTIPersistence selects how the once-only use of assertion ids is made
// durable. Both keep replay impossible, across crashes too; they differ in
// what a token request waits for.
type JTIPersistence int

const (
	// JTIBatch: a token is returned once its jti is in a committed store
	// transaction. Concurrent requests share the transaction and its fsync
	// (bolt's Batch), so a request waits for a group commit, not its own.
	JTIBatch JTIPersistence = iota
	// JTIGroup: a token is returned as soon as the jti is in the in-memory
	// set (which both modes load at start with the ids earlier runs
	// stored); ids are written to the store in groups once a second and on
	// Close.
	// If a run ends without Close (a crash), the next run refuses every
	// assertion issued (iat) up to its start, so an id lost with the crash
	// cannot be replayed.
	JTIGroup
)

// String names the mode: "batch" or "group".
func (m JTIPersistence) String() string {
	if m == JTIGroup {
		return "group"
	}
	return "batch"
}

// WithJTIPersistence selects how used assertion ids are persisted
// (JTIGroup by default: see docs/benchmarks.md for the measured cost of
// each).
func WithJTIPersistence(m JTIPersistence) Option { return func(i *Issuer) { i.jtiMode = m } }

// metaRun is the store meta key recording whether a run is in progress.
const metaRun = "run"

// jtiGroupDelay is how long the group writer gathers ids before a commit.
// Longer groups share bolt's per-commit work (branch pages, meta, fsync)
// among more ids, and a second's ids have expiries past every earlier
// one's, so a commit appends; how long does not matter for replay safety,
// since a crash makes the next run refuse every assertion issued before
// it. The writer's share of the issuer's CPU was 9 % with 50 ms groups and
// 1-2 % with 1 s groups (docs/benchmarks.md).
const jtiGroupDelay = time.Second

// startRun reads how the previous run ended and marks this one running.
func (i *Issuer) startRun(ctx context.Context) error {
	prev, err := i.store.Meta(ctx, metaRun)
	if err != nil {
		return err
	}
	if string(prev) == "running-"+JTIGroup.String() {
		i.watermark = i.now()
		i.log.Warn().Time("refuse_issued_until", i.watermark).
			Msg("the previous run did not shut down cleanly: assertions issued before this start are refused")
	}
	used, err := i.store.UsedJTIs(ctx)
	if err != nil {
		return err
	}
	for _, j := range used {
		i.replay.use(j.ID, j.ExpiresAt)
	}
	return i.store.SetMeta(ctx, metaRun, []byte("running-"+i.jtiMode.String()))
}

// endRun marks a clean shutdown after the last used ids are written.
func (i *Issuer) endRun(ctx context.Context) error {
	return i.store.SetMeta(ctx, metaRun, []byte("clean"))
}

// errReplayedJTI refuses an assertion whose jti was used before.
var errReplayedJTI = fmt.Errorf("%w: %w: jti", ErrInvalidGrant, ErrReplay)

// useJTI enforces once-only use of an assertion id; key is customer/jti.
func (i *Issuer) useJTI(ctx context.Context, key string, iat, exp time.Time) error {
	if !i.watermark.IsZero() && iat.Unix() <= i.watermark.Unix() {
		return fmt.Errorf("%w: %w: issued before the issuer restarted after a crash; mint a new one", ErrInvalidGrant, ErrReplay)
	}
	if !i.replay.use(key, exp) {
		return errReplayedJTI
	}
	if i.jtiMode == JTIGroup {
		return i.jtiw.add(store.UsedJTI{ID: key, ExpiresAt: exp})
	}
	fresh, err := i.store.UseJTI(ctx, key, exp)
	if err != nil {
		return err
	}
	if !fresh {
		return errReplayedJTI
	}
	return nil
}

// jtiWriter writes used ids to the store in groups.
type jtiWriter struct {
	store   store.Store
	mu      sync.Mutex
	pending []store.UsedJTI
	closed  bool // set by close: add refuses
	kick    chan struct{}
	onError func(error)
}

func newJTIWriter(s store.Store, onError func(error)) *jtiWriter {
	return &jtiWriter{store: s, kick: make(chan struct{}, 1), onError: onError}
}

// add queues j for the next commit; once the writer is closed it refuses,
// so that no token goes out with an id the final commit would miss.
func (w *jtiWriter) add(j store.UsedJTI) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("record used assertion id: %w", ErrClosed)
	}
	first := len(w.pending) == 0
	w.pending = append(w.pending, j)
	w.mu.Unlock()
	if first {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// run commits pending ids jtiGroupDelay after the first arrives, until
// stop is closed; then it writes what is left.
func (w *jtiWriter) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			w.flush()
			return
		case <-w.kick:
		}
		select {
		case <-stop:
		case <-time.After(jtiGroupDelay):
		}
		w.flush()
	}
}

// close makes add refuse from now on.
func (w *jtiWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// unwritten counts the ids waiting for a commit.
func (w *jtiWriter) unwritten() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

func (w *jtiWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := w.store.PutJTIs(context.Background(), batch); err != nil {
		w.onError(err)
		w.mu.Lock()
		w.pending = append(batch, w.pending...)
		w.mu.Unlock()
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}
