package registrar

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	now := t0
	tab := New(func() time.Time { return now })
	src := netip.MustParseAddrPort("127.0.0.1:5099")
	b := func(uri string, exp time.Duration, cseq uint32) Binding {
		return Binding{Contact: "<" + uri + ">", URI: uri, Source: src, Transport: "WS", CallID: "c", CSeq: cseq, Expires: now.Add(exp)}
	}
	aor := Key("alice", "ACME.example")
	if aor != "alice@acme.example" {
		t.Fatalf("key %q", aor)
	}
	t.Run("a binding is added and found by AOR and by user", func(t *testing.T) {
		tab.Update(aor, []Binding{b("sip:a@x.invalid", time.Minute, 1)})
		if got := tab.Lookup(aor); len(got) != 1 {
			t.Fatalf("lookup %v", got)
		}
		if got := tab.LookupUser("alice", ""); len(got) != 1 {
			t.Fatalf("lookup user %v", got)
		}
	})
	t.Run("an older CSeq does not refresh", func(t *testing.T) {
		tab.Update(aor, []Binding{b("sip:a@x.invalid", time.Hour, 0)})
		if got := tab.Lookup(aor); got[0].CSeq != 1 {
			t.Fatalf("refreshed by older cseq: %v", got)
		}
	})
	t.Run("a binding does not outlive its expiry", func(t *testing.T) {
		now = t0.Add(2 * time.Minute)
		if got := tab.Lookup(aor); len(got) != 0 {
			t.Fatalf("expired binding found: %v", got)
		}
		if n := tab.Sweep(nil); n != 1 || tab.Len() != 0 {
			t.Fatalf("swept %d, %d left", n, tab.Len())
		}
		now = t0
	})
	t.Run("expires zero unregisters", func(t *testing.T) {
		tab.Update(aor, []Binding{b("sip:a@x.invalid", time.Minute, 2), b("sip:b@x.invalid", time.Minute, 2)})
		got := tab.Update(aor, []Binding{b("sip:a@x.invalid", 0, 3)})
		if len(got) != 1 || got[0].URI != "sip:b@x.invalid" {
			t.Fatalf("after unregister %v", got)
		}
	})
	t.Run("star unregisters all", func(t *testing.T) {
		tab.RemoveAll(aor)
		if tab.Len() != 0 || tab.LookupUser("alice", "") != nil {
			t.Fatal("bindings left")
		}
	})
	t.Run("a connection gone removes its bindings", func(t *testing.T) {
		tab.Update(aor, []Binding{b("sip:a@x.invalid", time.Minute, 4)})
		tab.Sweep(func(Binding) bool { return true })
		if tab.Len() != 0 {
			t.Fatal("binding of a closed connection kept")
		}
	})
}

func TestLookupUserOfTwoCustomers(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tab := New(func() time.Time { return now })
	bind := func(customer, host string) {
		src := netip.MustParseAddrPort("127.0.0.1:5099")
		tab.Update(Key("alice", host), []Binding{{URI: "sip:alice@" + host, Source: src, Customer: customer, Expires: now.Add(time.Minute)}})
	}
	bind("acme", "acme.example")
	t.Run("a user of exactly one customer is found without naming the customer", func(t *testing.T) {
		if got := tab.LookupUser("alice", ""); len(got) != 1 || got[0].Customer != "acme" {
			t.Fatalf("lookup %v", got)
		}
	})
	bind("globex", "globex.example")
	t.Run("a user of two customers is found only with the customer named", func(t *testing.T) {
		if got := tab.LookupUser("alice", ""); got != nil {
			t.Fatalf("ambiguous user found: %v", got)
		}
		for _, c := range []string{"acme", "globex"} {
			if got := tab.LookupUser("alice", c); len(got) != 1 || got[0].Customer != c {
				t.Fatalf("%s: lookup %v", c, got)
			}
		}
		if got := tab.LookupUser("alice", "initech"); got != nil {
			t.Fatalf("other customer: %v", got)
		}
	})
	t.Run("once one unregisters the other is found again", func(t *testing.T) {
		tab.RemoveAll(Key("alice", "acme.example"))
		if got := tab.LookupUser("alice", ""); len(got) != 1 || got[0].Customer != "globex" {
			t.Fatalf("lookup %v", got)
		}
	})
}

func TestUpdateMax(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tab := New(func() time.Time { return now })
	b := func(uri string) Binding { return Binding{URI: uri, Expires: now.Add(time.Minute)} }
	if _, err := tab.UpdateMax("alice", []Binding{b("sip:a@x"), b("sip:b@x")}, 2); err != nil {
		t.Fatal(err)
	}
	t.Run("an update past the bound changes nothing", func(t *testing.T) {
		_, err := tab.UpdateMax("alice", []Binding{b("sip:c@x")}, 2)
		if !errors.Is(err, ErrTooManyContacts) || len(tab.Lookup("alice")) != 2 {
			t.Fatalf("err %v, %d bindings", err, len(tab.Lookup("alice")))
		}
	})
	t.Run("a refresh within the bound is applied", func(t *testing.T) {
		if got, err := tab.UpdateMax("alice", []Binding{b("sip:b@x")}, 2); err != nil || len(got) != 2 {
			t.Fatalf("err %v, %v", err, got)
		}
	})
}
