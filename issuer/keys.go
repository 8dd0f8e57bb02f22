package issuer

import (
	"context"
	"fmt"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// keyLeeway is how long a retired key stays published after the last token
// it signed has expired, for verifiers with skewed clocks.
const keyLeeway = time.Minute

// KeyInfo describes a published signing key.
type KeyInfo struct {
	ID        string         `json:"kid"`
	Alg       string         `json:"alg"`
	State     chain.KeyState `json:"state"`
	CreatedAt time.Time      `json:"created_at"`
	RetiredAt *time.Time     `json:"retired_at,omitempty"`
}

// Keys lists the published signing keys.
func (i *Issuer) Keys() []KeyInfo {
	st := i.state.Load()
	out := make([]KeyInfo, 0, len(st.keys))
	for _, k := range st.keys {
		ki := KeyInfo{ID: k.ID, Alg: k.Alg, State: k.State, CreatedAt: k.CreatedAt}
		if !k.RetiredAt.IsZero() {
			t := k.RetiredAt
			ki.RetiredAt = &t
		}
		out = append(out, ki)
	}
	return out
}

// JWKS returns the JSON Web Key Set document of the published keys.
func (i *Issuer) JWKS() []byte { return i.state.Load().jwks }

func (i *Issuer) storeKey(k *chain.SigningKey) (store.Key, error) {
	der, err := k.MarshalPrivateKey()
	if err != nil {
		return store.Key{}, err
	}
	return store.Key{ID: k.ID, Alg: k.Alg, State: k.State, Sealed: i.sealer.seal(der, "key/"+k.ID), CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt}, nil
}

// ensureKeys makes sure there is an active key and a published next key.
// The caller holds wmu.
func (i *Issuer) ensureKeys(ctx context.Context, actor string) error {
	st := i.state.Load().clone()
	now := i.now()
	var put []*chain.SigningKey
	hasNext := false
	for _, k := range st.keys {
		hasNext = hasNext || k.State == chain.KeyNext
	}
	if i.state.Load().active == nil {
		k, err := chain.GenerateSigningKey(i.cfg.SigningAlg, now)
		if err != nil {
			return err
		}
		k.State = chain.KeyActive
		put = append(put, k)
	}
	if !hasNext {
		k, err := chain.GenerateSigningKey(i.cfg.SigningAlg, now)
		if err != nil {
			return err
		}
		put = append(put, k)
	}
	if len(put) == 0 {
		return nil
	}
	return i.commitKeys(ctx, st, put, nil, &store.AuditEntry{Actor: actor, Action: "keys.create", Target: put[0].ID})
}

// commitKeys writes put (appending new ones to st.keys) and deletes del,
// then publishes st. The caller holds wmu.
func (i *Issuer) commitKeys(ctx context.Context, st *state, put []*chain.SigningKey, del []string, a *store.AuditEntry) error {
	var rows []store.Key
	for _, k := range put {
		row, err := i.storeKey(k)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	a.Time = i.now()
	if err := i.store.PutKeys(ctx, rows, del, a); err != nil {
		return err
	}
	byID := map[string]*chain.SigningKey{}
	for _, k := range put {
		byID[k.ID] = k
	}
	drop := map[string]bool{}
	for _, id := range del {
		drop[id] = true
	}
	var keys []*chain.SigningKey
	for _, k := range st.keys {
		if drop[k.ID] {
			continue
		}
		if n, ok := byID[k.ID]; ok {
			k = n
			delete(byID, k.ID)
		}
		keys = append(keys, k)
	}
	for _, k := range put {
		if _, ok := byID[k.ID]; ok {
			keys = append(keys, k)
		}
	}
	st.keys = keys
	if err := st.derive(); err != nil {
		return err
	}
	i.state.Store(st)
	i.metrics.keys.Set(float64(len(keys)))
	return nil
}

// RotateKeys rotates the signing keys (SPEC §2.5): the next key, published
// since the last rotation, becomes active; the active key retires and stays
// published until every token it signed has expired; a new next key is
// generated and published. It returns the keys after the rotation.
func (i *Issuer) RotateKeys(ctx context.Context) ([]KeyInfo, error) {
	i.wmu.Lock()
	defer i.wmu.Unlock()
	st := i.state.Load().clone()
	now := i.now()
	var put []*chain.SigningKey
	var next *chain.SigningKey
	for _, k := range st.keys {
		if k.State == chain.KeyNext {
			next = k
		}
	}
	if next == nil {
		return nil, fmt.Errorf("rotate keys: no next key published")
	}
	for _, k := range st.keys {
		if k.State == chain.KeyActive {
			r := *k
			r.State, r.RetiredAt = chain.KeyRetired, now
			put = append(put, &r)
		}
	}
	a := *next
	a.State = chain.KeyActive
	put = append(put, &a)
	n, err := chain.GenerateSigningKey(i.cfg.SigningAlg, now)
	if err != nil {
		return nil, err
	}
	put = append(put, n)
	del := i.expiredKeys(st, now)
	audit := &store.AuditEntry{Actor: actorOf(ctx), Action: "keys.rotate", Target: a.ID,
		Detail: fmt.Sprintf("active %s, next %s", a.ID, n.ID)}
	if err := i.commitKeys(ctx, st, put, del, audit); err != nil {
		return nil, err
	}
	i.log.Info().Str("active", a.ID).Str("next", n.ID).Msg("signing keys rotated")
	return i.Keys(), nil
}

// expiredKeys names the retired keys whose every token has expired.
func (i *Issuer) expiredKeys(st *state, now time.Time) []string {
	var del []string
	for _, k := range st.keys {
		if k.State == chain.KeyRetired && now.After(k.RetiredAt.Add(i.cfg.TokenTTL+keyLeeway)) {
			del = append(del, k.ID)
		}
	}
	return del
}

// dropExpiredKeys unpublishes retired keys past their last token. The
// caller holds wmu.
func (i *Issuer) dropExpiredKeys(ctx context.Context, actor string) error {
	st := i.state.Load().clone()
	del := i.expiredKeys(st, i.now())
	if len(del) == 0 {
		return nil
	}
	return i.commitKeys(ctx, st, nil, del, &store.AuditEntry{Actor: actor, Action: "keys.unpublish", Target: del[0]})
}
