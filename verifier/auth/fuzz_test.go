package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/chain"
)

func FuzzSplitCredentials(f *testing.F) {
	for _, s := range []string{"Bearer a.b.c", "a.b.c", `Digest username="1:a", realm="r", nonce="n", uri="sip:x", response="0", qop=auth, nc=00000001, cnonce="c"`, "Bearer", "bearer  ", "Basic x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scheme, v, ok := SplitCredentials(s)
		if ok && v == "" {
			t.Fatalf("ok with an empty value for %q", s)
		}
		if ok && scheme != SchemeBearer && scheme != SchemeDigest {
			t.Fatalf("scheme %q", scheme)
		}
	})
}

func FuzzDigestVerify(f *testing.F) {
	now := t0
	d, err := NewDigest("trunk.example.net", &chain.EphemeralVerifier{Secrets: [][]byte{[]byte("s")}, Now: clock(&now)}, time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	n := d.Nonce()
	ruri := uri(f, "sip:x")
	f.Add(`username="1800003600:alice", realm="trunk.example.net", nonce="` + n + `", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c", algorithm=MD5`)
	f.Add(`username="a\"b", realm=, nonce`)
	f.Add(`username=1:a,realm="trunk.example.net",nonce="` + n + `",uri="sip:x",response="x",qop="auth",nc=1,cnonce=c,algorithm=SHA-256`)
	f.Fuzz(func(t *testing.T, params string) {
		id, err := d.Verify("REGISTER", ruri, params)
		if err == nil || id != nil {
			t.Fatalf("fuzzed credentials verified: %q", params)
		}
		if !errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, ErrStaleNonce) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

func FuzzCheckNonce(f *testing.F) {
	now := t0
	d := &Digest{Realm: "r", NonceKey: []byte("k"), Now: clock(&now)}
	f.Add(d.Nonce())
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, nonce string) {
		err := d.CheckNonce(nonce)
		if err == nil {
			// Only a nonce we made can pass: its MAC must match.
			made := d.Nonce()
			if len(made) != len(nonce) {
				t.Fatalf("foreign nonce %q passed", nonce)
			}
		}
	})
}
