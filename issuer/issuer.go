package issuer

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/boltstore"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Issuer is the hosted issuer: the token service and the provisioning API
// over one store. It is safe for concurrent use.
type Issuer struct {
	cfg       Config
	store     store.Store
	ownStore  bool
	now       func() time.Time
	log       zerolog.Logger
	sealer    *sealer
	ephemeral chain.EphemeralFormat
	httpc     *http.Client

	state atomic.Pointer[state]
	wmu   sync.Mutex // serialises provisioning writes

	replay  *replaySet
	revoked *revokedSet
	oidc    *oidcCache
	limits  *limits
	metrics *metrics
	handler http.Handler
	kinds   map[Form]credential
	jtiMode JTIPersistence
	jtiw    *jtiWriter
	// watermark: assertions issued up to it are refused (after a crash in
	// JTIGroup mode); zero when unused.
	watermark time.Time
	stop      chan struct{}
	stopped   sync.WaitGroup
	closeErr  error
	closed    sync.Once
}

// Option changes how New builds an Issuer.
type Option func(*Issuer)

// WithStore makes the issuer use s instead of opening the bolt store in
// the data directory. The issuer does not close a store given this way.
func WithStore(s store.Store) Option { return func(i *Issuer) { i.store = s } }

// WithClock replaces time.Now, so tests can travel in time.
func WithClock(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// WithLogger sets the logger (the default discards).
func WithLogger(l zerolog.Logger) Option { return func(i *Issuer) { i.log = l } }

// WithHTTPClient sets the client used to fetch OpenID Connect discovery
// documents and JWKS (the default has 5 s timeouts).
func WithHTTPClient(c *http.Client) Option { return func(i *Issuer) { i.httpc = c } }

// New validates cfg, opens the store (bolt under cfg.Data unless WithStore
// is given), loads customers, secrets and keys into memory, and creates the
// first signing keys if there are none.
func New(cfg Config, opts ...Option) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	i := &Issuer{cfg: cfg, now: time.Now, log: zerolog.Nop(), stop: make(chan struct{}), jtiMode: JTIGroup}
	for _, o := range opts {
		o(i)
	}
	hash, _ := chain.ParseHash(cfg.Ephemeral.Hash)
	i.ephemeral = chain.EphemeralFormat{Hash: hash}
	var err error
	if i.sealer, err = newSealer(cfg.MasterKey); err != nil {
		return nil, err
	}
	if i.httpc == nil {
		i.httpc = &http.Client{Timeout: 5 * time.Second}
	}
	if i.store == nil {
		if cfg.Data == "" {
			return nil, fmt.Errorf("%w: data directory is required", ErrConfig)
		}
		bs, err := boltstore.Open(cfg.Data)
		if err != nil {
			return nil, err
		}
		i.store, i.ownStore = bs, true
	}
	i.replay = newReplaySet()
	i.revoked = newRevokedSet()
	i.oidc = newOIDCCache(i.httpc, i.now)
	i.limits = newLimits(cfg.RateLimit)
	i.metrics = newMetrics()
	i.kinds = map[Form]credential{
		FormAssertion: assertionKind{i},
		FormLegacy:    legacyKind{i},
		FormServer:    serverKind{i},
		FormOIDC:      oidcKind{i},
	}
	if err := i.load(context.Background()); err != nil {
		i.closeStore()
		return nil, err
	}
	if err := i.startRun(context.Background()); err != nil {
		i.closeStore()
		return nil, err
	}
	i.jtiw = newJTIWriter(i.store, func(err error) { i.log.Error().Err(err).Msg("writing used assertion ids") })
	if i.handler, err = i.newHandler(); err != nil {
		i.closeStore()
		return nil, err
	}
	i.stopped.Add(2)
	go i.janitor()
	go func() {
		defer i.stopped.Done()
		i.jtiw.run(i.stop)
	}()
	return i, nil
}

// Config returns the configuration the issuer runs with (secrets included:
// do not log it).
func (i *Issuer) Config() Config { return i.cfg }

// Handler returns the HTTP API of SPEC §3.
func (i *Issuer) Handler() http.Handler { return i.handler }

// Server is the http.Server the issuer runs in: its Handler, timeouts so
// that a slow or idle client cannot hold a connection for long, and a
// 64 KiB limit on request headers. The trunkpass binary and the load test
// both serve with it.
func (i *Issuer) Server() *http.Server {
	return &http.Server{
		Handler:           i.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Close stops background work and closes the store if the issuer opened it.
func (i *Issuer) Close() error {
	i.closed.Do(func() {
		i.jtiw.close() // before the final commit: no id may come after it
		close(i.stop)
		i.stopped.Wait()
		if n := i.jtiw.unwritten(); n > 0 {
			// The run stays marked running, so the next start refuses
			// every assertion issued before it: the lost ids cannot be
			// replayed.
			i.closeErr = fmt.Errorf("close: %d used assertion ids not written", n)
		} else {
			i.closeErr = i.endRun(context.Background())
		}
		if err := i.closeStore(); i.closeErr == nil {
			i.closeErr = err
		}
	})
	return i.closeErr
}

func (i *Issuer) closeStore() error {
	if i.ownStore {
		return i.store.Close()
	}
	return nil
}

// load reads the store into a fresh snapshot.
func (i *Issuer) load(ctx context.Context) error {
	st := &state{
		customers: map[string]*store.Customer{},
		secrets:   map[string]secretEntry{},
		edges:     map[string]store.EdgeClient{},
	}
	customers, err := i.store.Customers(ctx)
	if err != nil {
		return err
	}
	for _, c := range customers {
		st.customers[c.ID] = &c
	}
	secrets, err := i.store.Secrets(ctx)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		e, err := i.openSecret(s)
		if err != nil {
			return err
		}
		st.secrets[s.ID] = e
	}
	edges, err := i.store.EdgeClients(ctx)
	if err != nil {
		return err
	}
	for _, e := range edges {
		st.edges[e.ID] = e
	}
	keys, err := i.store.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		der, err := i.sealer.open(k.Sealed, "key/"+k.ID)
		if err != nil {
			return fmt.Errorf("signing key: %w", err)
		}
		priv, err := chain.ParsePrivateKey(k.Alg, der)
		if err != nil {
			return err
		}
		st.keys = append(st.keys, &chain.SigningKey{ID: k.ID, Alg: k.Alg, Private: priv, State: k.State, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt})
	}
	revoked, err := i.store.RevokedTokens(ctx)
	if err != nil {
		return err
	}
	for _, r := range revoked {
		i.revoked.add(r.JTI, r.ExpiresAt)
	}
	if err := st.derive(); err != nil {
		return err
	}
	i.state.Store(st)
	i.metrics.keys.Set(float64(len(st.keys)))
	i.wmu.Lock()
	defer i.wmu.Unlock()
	return i.ensureKeys(ctx, "issuer")
}

func (i *Issuer) openSecret(s store.Secret) (secretEntry, error) {
	v, err := i.sealer.open(s.Sealed, "secret/"+s.ID)
	if err != nil {
		return secretEntry{}, fmt.Errorf("customer secret: %w", err)
	}
	meta := s
	meta.Sealed = nil
	return secretEntry{meta: meta, secret: chain.Secret{
		ID: s.ID, Customer: s.Customer, Value: v,
		NotBefore: s.NotBefore, NotAfter: s.NotAfter, Revoked: s.Revoked,
	}}, nil
}

// janitor runs Maintain every minute until Close.
func (i *Issuer) janitor() {
	defer i.stopped.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-i.stop:
			return
		case <-t.C:
			if err := i.Maintain(context.Background()); err != nil {
				i.log.Error().Err(err).Msg("maintenance")
			}
		}
	}
}

// Maintain forgets what has expired: used jti values, revoked tokens,
// retired signing keys whose last token has expired, idle rate limiters.
// It runs every minute on its own; tests call it after moving the clock.
func (i *Issuer) Maintain(ctx context.Context) error {
	now := i.now()
	i.replay.purge(now)
	i.revoked.purge(now)
	i.limits.purge(now)
	if err := i.store.Purge(ctx, now); err != nil {
		return err
	}
	i.wmu.Lock()
	defer i.wmu.Unlock()
	return i.dropExpiredKeys(ctx, "issuer")
}

// replaySet is the in-memory once-only set of assertion jti values: it
// refuses a concurrent replay at once, before the durable check.
//
// It holds a 128-bit keyed hash of each id and its expiry in seconds, so
// that its maps carry no pointers: the garbage collector does not walk
// them, however many ids are live. Two different ids share a hash with
// probability about 2^-128 per pair, under seeds drawn at start; a shared
// hash could only refuse a fresh id, never let a replay through.
type replaySet struct {
	seeds  [2]maphash.Seed
	shards [32]struct {
		mu sync.Mutex
		m  map[[2]uint64]int64
	}
}

func newReplaySet() *replaySet {
	r := &replaySet{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	for i := range r.shards {
		r.shards[i].m = map[[2]uint64]int64{}
	}
	return r
}

// use records key until exp and reports whether it was new.
func (r *replaySet) use(key string, exp time.Time) bool {
	h := [2]uint64{maphash.String(r.seeds[0], key), maphash.String(r.seeds[1], key)}
	s := &r.shards[h[0]%uint64(len(r.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h]; ok {
		return false
	}
	s.m[h] = exp.Unix()
	return true
}

// purge forgets the ids whose expiry second is before now's.
func (r *replaySet) purge(now time.Time) {
	t := now.Unix()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for k, exp := range s.m {
			if exp < t {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

// revokedSet holds revoked edge-token jti values until they expire.
type revokedSet struct {
	mu sync.RWMutex
	m  map[string]time.Time
}

func newRevokedSet() *revokedSet { return &revokedSet{m: map[string]time.Time{}} }

func (r *revokedSet) add(jti string, exp time.Time) {
	r.mu.Lock()
	r.m[jti] = exp
	r.mu.Unlock()
}

func (r *revokedSet) has(jti string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.m[jti]
	return ok
}

func (r *revokedSet) purge(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, exp := range r.m {
		if exp.Before(now) {
			delete(r.m, k)
		}
	}
}
