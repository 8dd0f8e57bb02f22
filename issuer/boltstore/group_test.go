package boltstore

import (
	"slices"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/issuer/store"
)

// FuzzJTIGroupRecord: any value decodes without a panic, into ids whose
// own encoding decodes to them again.
func FuzzJTIGroupRecord(f *testing.F) {
	f.Add(encodeJTIGroup([]store.UsedJTI{{ID: "acme/a", ExpiresAt: time.Unix(1_900_000_000, 0)}, {ID: "", ExpiresAt: time.Unix(0, 0)}}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, v []byte) {
		ids, err := appendJTIGroup(nil, v)
		if err != nil {
			return
		}
		again, err := appendJTIGroup(nil, encodeJTIGroup(ids))
		if err != nil {
			t.Fatalf("re-encoded %v: %v", ids, err)
		}
		if !slices.EqualFunc(ids, again, func(a, b store.UsedJTI) bool { return a.ID == b.ID && a.ExpiresAt.Unix() == b.ExpiresAt.Unix() }) {
			t.Fatalf("decoded %v, re-decoded %v", ids, again)
		}
	})
}
