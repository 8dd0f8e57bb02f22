// Package storetest is the contract every store.Store implementation must
// pass: call Run from the implementation's tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Run runs the contract suite; open returns a fresh, empty store for each
// subtest (Run closes it).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fresh := func(t *testing.T) store.Store {
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	audit := func(action, target string) *store.AuditEntry {
		return &store.AuditEntry{Time: t0, Actor: "test", Action: action, Target: target}
	}
	acme := store.Customer{
		ID: "acme", Name: "Acme", Domain: "acme.example", Origins: []string{"https://acme.example"},
		MaxTTL: store.Duration(5 * time.Minute), SIP: chain.SIPGrant{Methods: []string{"REGISTER", "INVITE"}},
		IdPs: []store.IdP{{Issuer: "https://idp.example", Audience: "acme"}}, CreatedAt: t0, UpdatedAt: t0,
	}

	t.Run("a created customer is listed with every field", func(t *testing.T) {
		s := fresh(t)
		if err := s.CreateCustomer(ctx, acme, audit("customer.create", "acme")); err != nil {
			t.Fatal(err)
		}
		got, err := s.Customers(ctx)
		if err != nil || len(got) != 1 {
			t.Fatalf("Customers = %v, %v", got, err)
		}
		c := got[0]
		if c.ID != "acme" || c.Domain != "acme.example" || c.MaxTTL != acme.MaxTTL || len(c.IdPs) != 1 ||
			len(c.SIP.Methods) != 2 || !c.CreatedAt.Equal(t0) || c.Origins[0] != "https://acme.example" {
			t.Errorf("customer = %+v", c)
		}
	})

	t.Run("a duplicate customer is a conflict and changes nothing", func(t *testing.T) {
		s := fresh(t)
		if err := s.CreateCustomer(ctx, acme, audit("customer.create", "acme")); err != nil {
			t.Fatal(err)
		}
		dup := acme
		dup.Name = "Other"
		if err := s.CreateCustomer(ctx, dup, audit("customer.create", "acme")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate create: %v, want ErrConflict", err)
		}
		got, _ := s.Customers(ctx)
		if got[0].Name != "Acme" {
			t.Errorf("name = %q", got[0].Name)
		}
		entries, _ := s.Audit(ctx, 0, 0)
		if len(entries) != 1 {
			t.Errorf("audit has %d entries, want 1 (failed changes are not audited)", len(entries))
		}
	})

	t.Run("update and delete of an unknown customer are not found", func(t *testing.T) {
		s := fresh(t)
		if err := s.UpdateCustomer(ctx, acme, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update: %v", err)
		}
		if err := s.DeleteCustomer(ctx, "acme", nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete: %v", err)
		}
	})

	t.Run("an updated customer replaces the old one", func(t *testing.T) {
		s := fresh(t)
		s.CreateCustomer(ctx, acme, nil)
		c := acme
		c.Name = "Acme Ltd"
		if err := s.UpdateCustomer(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Customers(ctx)
		if got[0].Name != "Acme Ltd" {
			t.Errorf("name = %q", got[0].Name)
		}
	})

	t.Run("customers are listed in id order", func(t *testing.T) {
		s := fresh(t)
		for _, id := range []string{"zeta", "alpha", "mid"} {
			c := acme
			c.ID = id
			if err := s.CreateCustomer(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.Customers(ctx)
		if len(got) != 3 || got[0].ID != "alpha" || got[1].ID != "mid" || got[2].ID != "zeta" {
			t.Errorf("order = %v", got)
		}
	})

	secret := store.Secret{ID: "sk1", Customer: "acme", Sealed: []byte{1, 2, 3}, NotBefore: t0, NotAfter: t0.Add(time.Hour), CreatedAt: t0}

	t.Run("a secret needs an existing customer", func(t *testing.T) {
		s := fresh(t)
		if err := s.CreateSecret(ctx, secret, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("create secret without customer: %v", err)
		}
	})

	t.Run("a secret keeps its sealed bytes and window, and can be revoked", func(t *testing.T) {
		s := fresh(t)
		s.CreateCustomer(ctx, acme, nil)
		if err := s.CreateSecret(ctx, secret, audit("secret.create", "sk1")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSecret(ctx, secret, nil); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate secret: %v", err)
		}
		got, err := s.Secrets(ctx)
		if err != nil || len(got) != 1 || string(got[0].Sealed) != "\x01\x02\x03" || !got[0].NotAfter.Equal(secret.NotAfter) {
			t.Fatalf("Secrets = %+v, %v", got, err)
		}
		r := got[0]
		r.Revoked, r.RevokedAt = true, t0.Add(time.Minute)
		if err := s.UpdateSecret(ctx, r, audit("secret.revoke", "sk1")); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Secrets(ctx)
		if !got[0].Revoked {
			t.Error("secret not revoked")
		}
		missing := secret
		missing.ID = "nope"
		if err := s.UpdateSecret(ctx, missing, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update unknown secret: %v", err)
		}
	})

	t.Run("deleting a customer deletes its secrets only", func(t *testing.T) {
		s := fresh(t)
		s.CreateCustomer(ctx, acme, nil)
		other := acme
		other.ID = "other"
		s.CreateCustomer(ctx, other, nil)
		s.CreateSecret(ctx, secret, nil)
		o := secret
		o.ID, o.Customer = "sk2", "other"
		s.CreateSecret(ctx, o, nil)
		if err := s.DeleteCustomer(ctx, "acme", audit("customer.delete", "acme")); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Secrets(ctx)
		if len(got) != 1 || got[0].ID != "sk2" {
			t.Errorf("secrets after delete = %+v", got)
		}
	})

	t.Run("keys are written and deleted together, in creation order", func(t *testing.T) {
		s := fresh(t)
		k1 := store.Key{ID: "k1", Alg: "EdDSA", State: chain.KeyActive, Sealed: []byte("a"), CreatedAt: t0.Add(time.Second)}
		k0 := store.Key{ID: "k0", Alg: "EdDSA", State: chain.KeyNext, Sealed: []byte("b"), CreatedAt: t0}
		if err := s.PutKeys(ctx, []store.Key{k1, k0}, nil, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Keys(ctx)
		if len(got) != 2 || got[0].ID != "k0" || got[1].ID != "k1" {
			t.Fatalf("keys = %+v", got)
		}
		k0.State = chain.KeyActive
		if err := s.PutKeys(ctx, []store.Key{k0}, []string{"k1"}, audit("keys.rotate", "k0")); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Keys(ctx)
		if len(got) != 1 || got[0].ID != "k0" || got[0].State != chain.KeyActive {
			t.Errorf("keys = %+v", got)
		}
	})

	t.Run("edge clients are created once and deleted", func(t *testing.T) {
		s := fresh(t)
		e := store.EdgeClient{ID: "edge1", Name: "sbc", SecretHash: []byte{9}, CreatedAt: t0}
		if err := s.CreateEdgeClient(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEdgeClient(ctx, e, nil); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate: %v", err)
		}
		got, _ := s.EdgeClients(ctx)
		if len(got) != 1 || string(got[0].SecretHash) != "\x09" {
			t.Errorf("edges = %+v", got)
		}
		if err := s.DeleteEdgeClient(ctx, "edge1", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteEdgeClient(ctx, "edge1", nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})

	t.Run("a jti is fresh exactly once, even under concurrency", func(t *testing.T) {
		s := fresh(t)
		const n = 16
		var wg sync.WaitGroup
		results := make(chan bool, n)
		for range n {
			wg.Go(func() {
				ok, err := s.UseJTI(ctx, "acme/j1", t0.Add(time.Hour))
				if err != nil {
					t.Error(err)
				}
				results <- ok
			})
		}
		wg.Wait()
		close(results)
		freshCount := 0
		for ok := range results {
			if ok {
				freshCount++
			}
		}
		if freshCount != 1 {
			t.Errorf("%d callers saw the jti fresh, want 1", freshCount)
		}
		if ok, _ := s.UseJTI(ctx, "acme/j2", t0.Add(time.Hour)); !ok {
			t.Error("another jti is not fresh")
		}
	})

	t.Run("jtis written in bulk are used, and bulk writes keep the first expiry", func(t *testing.T) {
		s := fresh(t)
		used := func(id string) bool {
			list, err := s.UsedJTIs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range list {
				if j.ID == id {
					return true
				}
			}
			return false
		}
		if used("a") {
			t.Fatal("unknown jti used")
		}
		if err := s.PutJTIs(ctx, []store.UsedJTI{{ID: "a", ExpiresAt: t0.Add(time.Hour)}, {ID: "b", ExpiresAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutJTIs(ctx, []store.UsedJTI{{ID: "a", ExpiresAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if !used("a") {
			t.Error("bulk-written jti not used")
		}
		if !used("b") {
			t.Error("second bulk-written jti not used")
		}
		s.Purge(ctx, t0.Add(time.Minute))
		if !used("a") {
			t.Error("a second bulk write shortened the first expiry")
		}
	})

	t.Run("meta values are read back, nil when unset", func(t *testing.T) {
		s := fresh(t)
		if v, err := s.Meta(ctx, "k"); v != nil || err != nil {
			t.Errorf("unset meta = %q, %v", v, err)
		}
		s.SetMeta(ctx, "k", []byte("v1"))
		s.SetMeta(ctx, "k", []byte("v2"))
		if v, _ := s.Meta(ctx, "k"); string(v) != "v2" {
			t.Errorf("meta = %q", v)
		}
	})

	t.Run("purge forgets expired jtis and revocations but keeps live ones", func(t *testing.T) {
		s := fresh(t)
		s.UseJTI(ctx, "old", t0)
		s.UseJTI(ctx, "live", t0.Add(time.Hour))
		s.RevokeToken(ctx, "rold", t0, nil)
		s.RevokeToken(ctx, "rlive", t0.Add(time.Hour), audit("token.revoke", "rlive"))
		if err := s.Purge(ctx, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.UseJTI(ctx, "live", t0.Add(time.Hour)); ok {
			t.Error("live jti became fresh after purge")
		}
		if ok, _ := s.UseJTI(ctx, "old", t0.Add(time.Hour)); !ok {
			t.Error("expired jti was not purged")
		}
		rev, _ := s.RevokedTokens(ctx)
		if len(rev) != 1 || rev[0].JTI != "rlive" || rev[0].ExpiresAt.Unix() != t0.Add(time.Hour).Unix() {
			t.Errorf("revoked = %+v", rev)
		}
	})

	t.Run("the audit log numbers entries and pages through them", func(t *testing.T) {
		s := fresh(t)
		for i := range 5 {
			c := acme
			c.ID = fmt.Sprintf("c%d", i)
			if err := s.CreateCustomer(ctx, c, audit("customer.create", c.ID)); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.Audit(ctx, 0, 0)
		if err != nil || len(all) != 5 {
			t.Fatalf("audit = %v, %v", all, err)
		}
		for i, e := range all {
			if i > 0 && e.Seq <= all[i-1].Seq {
				t.Errorf("seq not increasing: %d after %d", e.Seq, all[i-1].Seq)
			}
			if e.Target != fmt.Sprintf("c%d", i) || e.Actor != "test" || !e.Time.Equal(t0) {
				t.Errorf("entry %d = %+v", i, e)
			}
		}
		page, _ := s.Audit(ctx, all[1].Seq, 2)
		if len(page) != 2 || page[0].Seq != all[2].Seq || page[1].Seq != all[3].Seq {
			t.Errorf("page = %+v", page)
		}
	})
}
