// Package registrar is the trunkpass edge's in-memory location table: the
// contacts registered for each address of record, each binding expiring
// no later than the credential that created it, and bindings over
// WebSocket removed when their connection goes.
package registrar

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Binding is one registered contact of an address of record.
type Binding struct {
	// Contact is the Contact header value as registered (URI and params,
	// without expires), echoed in 200 answers.
	Contact string
	// URI is the contact URI alone; it identifies the binding in its AOR.
	URI string
	// Source is where the REGISTER came from: requests to the AOR go there.
	Source netip.AddrPort
	// Transport the REGISTER arrived on ("UDP", "TCP", "TLS", "WS", "WSS").
	Transport string
	// CallID and CSeq of the REGISTER that made or refreshed it.
	CallID string
	CSeq   uint32
	// Expires is when the binding goes.
	Expires time.Time
	// Customer is the customer of the credential that registered it ("" when
	// unknown).
	Customer string
}

// Connected reports whether the binding follows a connection (and goes
// with it) rather than an address.
func (b *Binding) Connected() bool {
	switch b.Transport {
	case "WS", "WSS", "TCP", "TLS":
		return true
	}
	return false
}

// Table is the location table. It is safe for concurrent use.
type Table struct {
	mu   sync.RWMutex
	aors map[string][]Binding
	// byUser maps a bare user to the AOR keys registered with it, so that
	// the trunk can reach "sip:alice@<edge address>".
	// A slice, not a set: nearly every user has one AOR, and a map per
	// user cost ~300 bytes per registration.
	byUser map[string][]string
	now    func() time.Time
}

// New makes an empty table; now is the clock (time.Now when nil).
func New(now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	return &Table{aors: make(map[string][]Binding), byUser: make(map[string][]string), now: now}
}

// Key is the table key of an AOR given as user and host: "user@host" with
// the host lower-cased, or the user alone when host is empty.
func Key(user, host string) string {
	if host == "" {
		return user
	}
	return user + "@" + strings.ToLower(host)
}

// Update applies a REGISTER for aor: each binding with a zero Expires
// time (or one already past) is removed, the others added or refreshed
// (matched by URI). A refresh with an older CSeq of the same Call-ID is
// ignored. It returns the bindings of aor after the update.
func (t *Table) Update(aor string, bs []Binding) []Binding {
	out, _ := t.UpdateMax(aor, bs, 0)
	return out
}

// ErrTooManyContacts is returned by UpdateMax when an update would leave
// an AOR with more bindings than allowed.
var ErrTooManyContacts = errors.New("too many contacts")

// UpdateMax is Update with at most max live bindings per AOR (no bound
// when max <= 0): an update that would leave more changes nothing and
// returns ErrTooManyContacts.
func (t *Table) UpdateMax(aor string, bs []Binding, max int) ([]Binding, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := live(slices.Clone(t.aors[aor]), now)
	for _, b := range bs {
		i := indexOf(cur, b.URI)
		if i >= 0 && cur[i].CallID == b.CallID && b.CSeq < cur[i].CSeq {
			continue
		}
		remove := !now.Before(b.Expires)
		switch {
		case i >= 0 && remove:
			cur = append(cur[:i], cur[i+1:]...)
		case i >= 0:
			cur[i] = b
		case !remove:
			cur = append(cur, b)
		}
	}
	if max > 0 && len(cur) > max {
		return nil, fmt.Errorf("aor %s: %d bindings, at most %d: %w", aor, len(cur), max, ErrTooManyContacts)
	}
	t.store(aor, cur)
	return append([]Binding(nil), cur...), nil
}

// RemoveAll removes every binding of aor ("Contact: *").
func (t *Table) RemoveAll(aor string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.store(aor, nil)
}

func (t *Table) store(aor string, bs []Binding) {
	user, _, _ := strings.Cut(aor, "@")
	aors := t.byUser[user]
	i := slices.Index(aors, aor)
	if len(bs) == 0 {
		delete(t.aors, aor)
		switch {
		case i < 0:
		case len(aors) == 1:
			delete(t.byUser, user)
		default:
			t.byUser[user] = slices.Delete(aors, i, i+1)
		}
		return
	}
	t.aors[aor] = bs
	if i < 0 {
		t.byUser[user] = append(aors, aor)
	}
}

// Lookup returns the live bindings of aor.
func (t *Table) Lookup(aor string) []Binding {
	now := t.now()
	t.mu.RLock()
	defer t.mu.RUnlock()
	return live(append([]Binding(nil), t.aors[aor]...), now)
}

// LookupUser returns the live bindings registered with user, whatever the
// AOR's host: those of customer when customer is set, otherwise only when
// every such binding belongs to one customer (with two customers' alice,
// a bare "alice" names nobody).
func (t *Table) LookupUser(user, customer string) []Binding {
	now := t.now()
	t.mu.RLock()
	aors := slices.Sorted(slices.Values(t.byUser[user]))
	var out []Binding
	for _, aor := range aors {
		for _, b := range t.aors[aor] {
			if now.Before(b.Expires) && (customer == "" || b.Customer == customer) {
				out = append(out, b)
			}
		}
	}
	t.mu.RUnlock()
	if customer == "" {
		for _, b := range out {
			if b.Customer != out[0].Customer {
				return nil
			}
		}
	}
	return out
}

// Len is the number of bindings, expired ones not yet swept included.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, bs := range t.aors {
		n += len(bs)
	}
	return n
}

// Sweep removes expired bindings and those for which gone reports that
// their connection has closed (gone may be nil). It returns how many it
// removed.
func (t *Table) Sweep(gone func(Binding) bool) int {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	removed := 0
	for aor, bs := range t.aors {
		keep := bs[:0]
		for _, b := range bs {
			if now.Before(b.Expires) && (gone == nil || !b.Connected() || !gone(b)) {
				keep = append(keep, b)
			}
		}
		removed += len(bs) - len(keep)
		if len(keep) != len(bs) {
			t.store(aor, keep)
		}
	}
	return removed
}

func live(bs []Binding, now time.Time) []Binding {
	out := bs[:0]
	for _, b := range bs {
		if now.Before(b.Expires) {
			out = append(out, b)
		}
	}
	return out
}

func indexOf(bs []Binding, uri string) int {
	for i := range bs {
		if bs[i].URI == uri {
			return i
		}
	}
	return -1
}
