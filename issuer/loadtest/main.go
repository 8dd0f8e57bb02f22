// Command loadtest measures the issuer over HTTP on loopback: edge tokens
// per second and latency percentiles for a token request form, next to the
// raw signing rate of the edge-token key in the same run.
//
//	go run ./issuer/loadtest -n 50000 -c 32 -form assertion -store bolt
//
// The issuer runs in this process on 127.0.0.1 (rate limits off) and
// shares the machine with the load generator, as wrk would. Assertions are
// minted before the clock starts, each with its own jti.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/issuer/store"
)

var profile, bodiesFile string

func main() {
	n := flag.Int("n", 50000, "token requests")
	c := flag.Int("c", 32, "concurrent connections")
	form := flag.String("form", "assertion", "request form: assertion (jti once-only) or server (HTTP Basic, no jti)")
	storeKind := flag.String("store", "bolt", "store: bolt (jti durable with Batch) or memory (no fsync at all)")
	alg := flag.String("alg", "EdDSA", "signing algorithm")
	jti := flag.String("jti", "group", "jti persistence: batch (token waits for a shared commit) or group (token does not wait)")
	signFor := flag.Duration("sign", 2*time.Second, "how long to measure the raw signing rate")
	signOnly := flag.Bool("sign-only", false, "only measure the raw signing rate")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the HTTP phase to this file")
	flag.StringVar(&bodiesFile, "serve", "", "serve only: write the request bodies (one JSON per line) to this file, print the token URL and serve until interrupted, for an external client such as wrk")
	flag.Parse()
	profile = *cpuprofile
	if *signOnly {
		r, err := rawSignRate(*alg, *signFor)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		fmt.Printf("raw %s signs/s (all cores): %.0f\n", *alg, r)
		return
	}
	mode := issuer.JTIBatch
	if *jti == "group" {
		mode = issuer.JTIGroup
	}
	if err := run(*n, *c, *form, *storeKind, *alg, *signFor, mode); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(n, conc int, form, storeKind, alg string, signFor time.Duration, mode issuer.JTIPersistence) error {
	dir, err := os.MkdirTemp("", "trunkpass-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg := issuer.DefaultConfig()
	cfg.URL = "http://" + ln.Addr().String()
	cfg.Data = dir
	cfg.SigningAlg = alg
	cfg.AdminToken = []byte("load-test-admin-token-0123456789")
	cfg.MasterKey = make([]byte, 32)
	rand.Read(cfg.MasterKey)
	cfg.RateLimit = issuer.RateLimitConfig{}
	opts := []issuer.Option{issuer.WithJTIPersistence(mode)}
	if storeKind == "memory" {
		opts = append(opts, issuer.WithStore(store.NewMemory()))
	}
	iss, err := issuer.New(cfg, opts...)
	if err != nil {
		return err
	}
	defer iss.Close()
	srv := &http.Server{Handler: iss.Handler()}
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	if _, err := iss.CreateCustomer(ctx, issuer.Customer{ID: "load", Domain: "load.example"}); err != nil {
		return err
	}
	sec, err := iss.CreateSecret(ctx, "load", time.Now().Add(-time.Minute), time.Time{})
	if err != nil {
		return err
	}

	bodies := make([][]byte, n)
	for i := range bodies {
		switch form {
		case "assertion":
			now := time.Now()
			cl := &chain.AssertionClaims{}
			cl.Issuer, cl.Subject, cl.Audience = "load", fmt.Sprintf("u%d", i%1000), []string{cfg.URL}
			cl.IssuedAt, cl.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(4*time.Minute))
			cl.ID = rand.Text()
			tok, err := chain.MintAssertion(chain.Secret{ID: sec.ID, Customer: "load", Value: []byte(sec.Secret)}, cl, "HS256", false)
			if err != nil {
				return err
			}
			bodies[i], _ = json.Marshal(map[string]string{"assertion": tok})
		case "server":
			bodies[i], _ = json.Marshal(map[string]any{"sub": fmt.Sprintf("u%d", i%1000)})
		default:
			return fmt.Errorf("form %q", form)
		}
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(sec.ID+":"+sec.Secret))

	if bodiesFile != "" {
		return serveOnly(cfg.URL, bodies, basic, form)
	}
	signRate, err := rawSignRate(alg, signFor)
	if err != nil {
		return err
	}

	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
	}
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, cfg.URL+"/v1/token", bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				if form == "server" {
					req.Header.Set("Authorization", basic)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != http.StatusOK {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if profile != "" {
		pprof.StopCPUProfile()
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	rate := float64(n) / elapsed.Seconds()
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("form=%s store=%s jti=%s alg=%s n=%d c=%d failures=%d\n", form, storeKind, mode, alg, n, conc, failures.Load())
	fmt.Printf("raw %s signs/s (all cores): %.0f\n", alg, signRate)
	fmt.Printf("tokens/s over HTTP: %.0f (%.0f%% of raw signing)\n", rate, 100*rate/signRate)
	fmt.Printf("latency p50 %s p99 %s\n", pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond))
	fmt.Printf("| %s | %s | %s | %d | %.0f | %.0f | %.0f%% | %s | %s |\n", form, storeKind, mode, conc, signRate, rate, 100*rate/signRate,
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond))
	if failures.Load() > 0 {
		return fmt.Errorf("%d requests failed", failures.Load())
	}
	return nil
}

// rawSignRate signs edge tokens with the key alone, on every core, for d.
func rawSignRate(alg string, d time.Duration) (float64, error) {
	key, err := chain.GenerateSigningKey(alg, time.Now())
	if err != nil {
		return 0, err
	}
	key.State = chain.KeyActive
	claims := &chain.EdgeClaims{CID: "load", SIP: chain.SIPGrant{AOR: "sip:u1@load.example", Methods: []string{"REGISTER", "INVITE", "MESSAGE"}}}
	claims.Issuer, claims.Subject, claims.Audience, claims.ID = "http://127.0.0.1", "u1", []string{"sip:trunk.example.net"}, "j"
	claims.IssuedAt, claims.ExpiresAt = jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now().Add(time.Minute))
	var count atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := chain.MintEdgeToken(key, claims); err != nil {
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(count.Load()) / d.Seconds(), nil
}

// serveOnly writes the bodies for an external load generator and serves
// until SIGINT or SIGTERM.
func serveOnly(url string, bodies [][]byte, basic, form string) error {
	f, err := os.Create(bodiesFile)
	if err != nil {
		return err
	}
	for _, b := range bodies {
		f.Write(b)
		f.Write([]byte("\n"))
	}
	if err := f.Close(); err != nil {
		return err
	}
	auth := ""
	if form == "server" {
		auth = basic
	}
	fmt.Printf("ready %s/v1/token %s\n", url, auth)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}
