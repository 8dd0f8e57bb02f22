package edsign_test

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trunkpass/trunkpass/issuer/edsign"
)

func mustNew(t testing.TB, priv ed25519.PrivateKey) *edsign.PrivateKey {
	t.Helper()
	k, err := edsign.New(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRFC8032Vectors(t *testing.T) {
	f, err := os.Open("testdata/rfc8032.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("malformed vector %q", line)
		}
		if fields[2] == "-" {
			fields[2] = ""
		}
		var b [4][]byte
		for i, h := range fields {
			if b[i], err = hex.DecodeString(h); err != nil {
				t.Fatal(err)
			}
		}
		k := mustNew(t, append(b[0], b[1]...))
		got, err := k.Sign(nil, b[2], crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b[3]) {
			t.Errorf("vector %d: signature %x, want %x", n+1, got, b[3])
		}
		if !bytes.Equal(k.Public().(ed25519.PublicKey), b[1]) {
			t.Errorf("vector %d: public key %x, want %x", n+1, k.Public(), b[1])
		}
		n++
	}
	if n != 3 {
		t.Fatalf("read %d vectors, want 3", n)
	}
}

// TestSameAsStdlib compares signatures with crypto/ed25519's over many keys
// and message lengths, including the signing input sizes of edge tokens.
func TestSameAsStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 64 {
		seed := make([]byte, ed25519.SeedSize)
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		k := mustNew(t, priv)
		for _, n := range []int{0, 1, 63, 64, 111, 112, 127, 128, 129, 500, 700, 1500, 4096} {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			want := ed25519.Sign(priv, msg)
			if got := k.AppendSign(nil, msg); !bytes.Equal(got, want) {
				t.Fatalf("seed %x, %d-byte message: %x, want %x", seed, n, got, want)
			}
		}
	}
}

func TestAppendSignAppends(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	k := mustNew(t, priv)
	got := k.AppendSign([]byte("head."), []byte("msg"))
	if !bytes.HasPrefix(got, []byte("head.")) || !bytes.Equal(got[5:], ed25519.Sign(priv, []byte("msg"))) {
		t.Fatalf("AppendSign = %q", got)
	}
}

func TestSignOptions(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	pub := priv.Public().(ed25519.PublicKey)
	k := mustNew(t, priv)
	msg := []byte("a message")
	digest := sha512.Sum512(msg)
	tests := []struct {
		name    string
		message []byte
		opts    crypto.SignerOpts
		verify  *ed25519.Options // nil: the signature must be refused
	}{
		{"crypto.Hash(0)", msg, crypto.Hash(0), &ed25519.Options{}},
		{"nil options", msg, nil, &ed25519.Options{}},
		{"pure Ed25519 options", msg, &ed25519.Options{}, &ed25519.Options{}},
		{"Ed25519ctx", msg, &ed25519.Options{Context: "trunkpass"}, &ed25519.Options{Context: "trunkpass"}},
		{"Ed25519ph", digest[:], &ed25519.Options{Hash: crypto.SHA512}, &ed25519.Options{Hash: crypto.SHA512}},
		{"Ed25519ph with context", digest[:], &ed25519.Options{Hash: crypto.SHA512, Context: "x"}, &ed25519.Options{Hash: crypto.SHA512, Context: "x"}},
		{"SHA-256", msg, crypto.SHA256, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := k.Sign(nil, tt.message, tt.opts)
			if tt.verify == nil {
				if err == nil {
					t.Fatal("signed with an unsupported hash")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := ed25519.VerifyWithOptions(pub, tt.message, sig, tt.verify); err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			want, err := priv.Sign(nil, tt.message, tt.verify)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sig, want) {
				t.Fatalf("signature %x, crypto/ed25519 gives %x", sig, want)
			}
		})
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	mismatched := append(bytes.Clone(priv[:32]), other[32:]...)
	sum := sha256.Sum256([]byte("x"))
	for name, key := range map[string][]byte{
		"empty":          nil,
		"seed only":      priv[:32],
		"too long":       append(bytes.Clone(priv), 0),
		"wrong public":   mismatched,
		"public is junk": append(bytes.Clone(priv[:32]), sum[:]...),
	} {
		if _, err := edsign.New(key); !errors.Is(err, edsign.ErrKey) {
			t.Errorf("%s: err = %v, want ErrKey", name, err)
		}
	}
}

func TestNewCopiesTheKey(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	want := ed25519.Sign(priv, []byte("m"))
	k := mustNew(t, bytes.Clone(priv))
	clear(priv) // the caller's buffer is wiped; the signer still has its copy
	if got := k.AppendSign(nil, []byte("m")); !bytes.Equal(got, want) {
		t.Fatal("signature changed after the caller's key buffer was cleared")
	}
}

func FuzzSign(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1}, 32), []byte(""))
	f.Add(bytes.Repeat([]byte{0xff}, 32), []byte("eyJhbGciOiJFZERTQSJ9.e30"))
	f.Fuzz(func(t *testing.T, seed, msg []byte) {
		if len(seed) != ed25519.SeedSize {
			return
		}
		priv := ed25519.NewKeyFromSeed(seed)
		k := mustNew(t, priv)
		want := ed25519.Sign(priv, msg)
		if got := k.AppendSign(nil, msg); !bytes.Equal(got, want) {
			t.Fatalf("AppendSign: signature %x, crypto/ed25519 gives %x", got, want)
		}
		if got, err := k.Sign(nil, msg, crypto.Hash(0)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Sign: signature %x (%v), crypto/ed25519 gives %x", got, err, want)
		}
	})
}

// edgeTokenInput is as long as the signing input of a typical edge token.
var edgeTokenInput = bytes.Repeat([]byte("eyJhbGciOiJFZERTQSIsImtpZCI6In0"), 20)

func BenchmarkSign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	k := mustNew(b, priv)
	b.ReportAllocs()
	for b.Loop() {
		k.Sign(nil, edgeTokenInput, crypto.Hash(0))
	}
}

// reportPaired runs measured and baseline one after the other in every
// iteration and reports the ratio of their summed times as unit: the noise
// of a shared machine moves it less than two benchmarks.
func reportPaired(b *testing.B, unit string, measured, baseline func()) {
	var m, base time.Duration
	for b.Loop() {
		t0 := time.Now()
		baseline()
		t1 := time.Now()
		measured()
		m += time.Since(t1)
		base += t1.Sub(t0)
	}
	b.ReportMetric(float64(m)/float64(base), unit)
}

// BenchmarkSignOverStdlib: this package against crypto/ed25519 on the
// same input.
func BenchmarkSignOverStdlib(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	k := mustNew(b, priv)
	reportPaired(b, "edsign/stdlib",
		func() { k.AppendSign(nil, edgeTokenInput) },
		func() { ed25519.Sign(priv, edgeTokenInput) })
}

// BenchmarkSignConcurrent signs from 8 goroutines per core, as an issuer
// with that many requests in flight does, alternating rounds of Sign, whose
// concurrent signatures share an inversion, with rounds of AppendSign,
// which inverts alone; it reports the ratio of their times.
func BenchmarkSignConcurrent(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	k := mustNew(b, priv)
	workers := 8 * runtime.GOMAXPROCS(0)
	round := func(batched bool, n int) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for range n {
					if batched {
						k.Sign(nil, edgeTokenInput, crypto.Hash(0))
					} else {
						k.AppendSign(nil, edgeTokenInput)
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	var batched, alone time.Duration
	for b.Loop() {
		batched += round(true, 4)
		alone += round(false, 4)
	}
	b.ReportMetric(float64(batched)/float64(alone), "batched/alone")
}

// BenchmarkSignSerial: Sign against AppendSign from one goroutine, what
// batching costs a signer that has nobody to share with.
func BenchmarkSignSerial(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	k := mustNew(b, priv)
	reportPaired(b, "batched/alone",
		func() { k.Sign(nil, edgeTokenInput, crypto.Hash(0)) },
		func() { k.AppendSign(nil, edgeTokenInput) })
}
