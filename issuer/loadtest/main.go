// Command loadtest measures the issuer over HTTP on loopback: edge tokens
// per second, latency percentiles, and the issuer's CPU time per token,
// next to the raw signing rate of the edge-token key in the same run.
//
//	go run ./issuer/loadtest -n 50000 -c 4
//
// By default the issuer runs in a child process (this binary with -child),
// so its CPU time is measured apart from the load generator's; the client
// writes prebuilt HTTP/1.1 requests on keep-alive connections and reads the
// answers with a minimal parser (-client nethttp uses net/http instead;
// -server inprocess runs the issuer in this process, as earlier versions
// did). Assertions are minted before the clock starts, each with its own
// jti. Raw signing and HTTP alternate in rounds, so both see the same
// machine; the issuer is idle while the raw rate is measured.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer"
	"github.com/trunkpass/trunkpass/issuer/edsign"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// opts are the command-line options.
type opts struct {
	n, conc                            int
	form, storeKind, alg, jti, logKind string
	serverKind, clientKind             string
	signFor                            time.Duration
	cpuprofile, bodiesFile, issuerCPUs string
	rawWhere                           string
	child                              bool
}

func main() {
	var o opts
	flag.IntVar(&o.n, "n", 50000, "token requests")
	flag.IntVar(&o.conc, "c", 4, "concurrent keep-alive connections")
	flag.StringVar(&o.form, "form", "assertion", "request form: assertion (jti once-only), server (HTTP Basic, no jti), or healthz (GET /healthz: the cost of HTTP alone)")
	flag.StringVar(&o.storeKind, "store", "bolt", "store: bolt (jti durable) or memory (no disk at all)")
	flag.StringVar(&o.alg, "alg", "EdDSA", "signing algorithm")
	flag.StringVar(&o.jti, "jti", "group", "jti persistence: batch (token waits for a shared commit) or group (token does not wait)")
	flag.StringVar(&o.logKind, "log", "none", "issuer log: none, or devnull (JSON access log at info level written to /dev/null, as the trunkpass binary logs)")
	flag.StringVar(&o.serverKind, "server", "child", "where the issuer runs: child (its own process, CPU measured apart) or inprocess")
	flag.StringVar(&o.clientKind, "client", "raw", "client: raw (prebuilt HTTP/1.1 requests, minimal response parser), spin (raw, but polling its sockets instead of sleeping, so that the issuer's writes never wake it) or nethttp (net/http Client)")
	flag.DurationVar(&o.signFor, "sign", 2*time.Second, "how long to measure the raw signing rate (in 5 rounds between HTTP rounds)")
	signOnly := flag.Bool("sign-only", false, "only measure the raw signing rate")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the issuer (the child process, or this one with -server inprocess) to this file")
	flag.StringVar(&o.bodiesFile, "serve", "", "serve only: write the request bodies (one JSON per line) to this file, print the token URL and serve until interrupted, for an external client such as wrk")
	flag.StringVar(&o.rawWhere, "raw", "issuer", "where raw signing is measured: issuer (in the issuer's process, on its cores, while it serves nothing) or client (in this process, on the load generator's cores)")
	flag.StringVar(&o.issuerCPUs, "issuer-cpus", "", "run the issuer process on these CPUs only (taskset -c LIST); pin the load generator to the others with taskset, e.g. taskset -c 0 loadtest -issuer-cpus 1")
	flag.BoolVar(&o.child, "child", false, "internal: run as the issuer process of a load test")
	flag.Parse()
	var err error
	switch {
	case *signOnly:
		var raw, fast rawRate
		raw.measure(o.alg, false, o.signFor)
		fmt.Printf("raw %s signs/s (all cores): %.0f, CPU %s per sign\n", o.alg, raw.rate(), raw.cpuPer())
		if o.alg == chain.AlgEdDSA {
			fast.measure(o.alg, true, o.signFor)
			fmt.Printf("the issuer's signer (edsign, batched): %.0f signs/s, CPU %s per sign\n", fast.rate(), fast.cpuPer())
		}
	case o.child:
		err = runChild(o)
	case o.bodiesFile != "":
		err = runServe(o)
	default:
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// served is an issuer listening on loopback, with one customer ("load")
// and one of its secrets.
type served struct {
	url, secretID, secret string
	close                 func()
}

// startIssuer starts an issuer on 127.0.0.1 with rate limits off.
func startIssuer(o opts) (*served, error) {
	dir, err := os.MkdirTemp("", "trunkpass-load")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg := issuer.DefaultConfig()
	cfg.URL = "http://" + ln.Addr().String()
	cfg.Data = dir
	cfg.SigningAlg = o.alg
	cfg.AdminToken = []byte("load-test-admin-token-0123456789")
	cfg.MasterKey = make([]byte, 32)
	rand.Read(cfg.MasterKey)
	cfg.RateLimit = issuer.RateLimitConfig{}
	mode := issuer.JTIBatch
	if o.jti == "group" {
		mode = issuer.JTIGroup
	}
	iopts := []issuer.Option{issuer.WithJTIPersistence(mode)}
	if o.storeKind == "memory" {
		iopts = append(iopts, issuer.WithStore(store.NewMemory()))
	}
	var logFile *os.File
	if o.logKind == "devnull" {
		if logFile, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
			return nil, err
		}
		iopts = append(iopts, issuer.WithLogger(zerolog.New(logFile).Level(zerolog.InfoLevel).With().Timestamp().Str("component", "issuer").Logger()))
	}
	iss, err := issuer.New(cfg, iopts...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv := iss.Server()
	go srv.Serve(ln)
	s := &served{url: cfg.URL, close: func() {
		srv.Close()
		iss.Close()
		if logFile != nil {
			logFile.Close()
		}
		os.RemoveAll(dir)
	}}
	ctx := context.Background()
	if _, err := iss.CreateCustomer(ctx, issuer.Customer{ID: "load", Domain: "load.example"}); err != nil {
		s.close()
		return nil, err
	}
	sec, err := iss.CreateSecret(ctx, "load", time.Now().Add(-time.Minute), time.Time{})
	if err != nil {
		s.close()
		return nil, err
	}
	s.secretID, s.secret = sec.ID, sec.Secret
	return s, nil
}

// runChild is the issuer process: it prints "ready URL SECRET-ID SECRET",
// then answers each line "cpu" on stdin with its CPU time in nanoseconds,
// and stops at the end of stdin.
func runChild(o opts) error {
	s, err := startIssuer(o)
	if err != nil {
		return err
	}
	defer s.close()
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("ready %s %s %s\n", s.url, s.secretID, s.secret)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "cpu":
			fmt.Printf("%d\n", cpuTime())
		case len(f) == 3 && f[0] == "sign": // sign <edsign 0|1> <nanoseconds>
			ns, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return fmt.Errorf("command %q: %w", in.Text(), err)
			}
			var r rawRate
			r.measure(o.alg, f[1] == "1", time.Duration(ns))
			fmt.Printf("%d %d %d\n", r.count, r.wall, r.cpu)
		}
	}
	return nil
}

// issuerHandle is how the load generator reaches the issuer and reads its
// CPU time.
type issuerHandle struct {
	url, secretID, secret string
	// cpu is the issuer's CPU time so far (with -server inprocess, this
	// process's: issuer and client together).
	cpu func() (time.Duration, error)
	// sign measures raw signing for about d in the issuer's process, on
	// its cores, while it serves nothing (rawSigns).
	sign  func(edsignKey bool, d time.Duration) (rawRate, error)
	close func()
}

func startChild(o opts) (*issuerHandle, error) {
	args := []string{"-child", "-store", o.storeKind, "-alg", o.alg, "-jti", o.jti, "-log", o.logKind}
	if o.cpuprofile != "" {
		args = append(args, "-cpuprofile", o.cpuprofile)
	}
	cmd := exec.Command(os.Args[0], args...)
	if o.issuerCPUs != "" {
		cmd = exec.Command("taskset", append([]string{"-c", o.issuerCPUs, os.Args[0]}, args...)...)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	out := bufio.NewReader(stdout)
	h := &issuerHandle{close: func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}}
	line, err := out.ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 4 || f[0] != "ready" {
		h.close()
		return nil, fmt.Errorf("issuer process did not start: %q %v", line, err)
	}
	h.url, h.secretID, h.secret = f[1], f[2], f[3]
	h.cpu = func() (time.Duration, error) {
		if _, err := io.WriteString(stdin, "cpu\n"); err != nil {
			return 0, err
		}
		l, err := out.ReadString('\n')
		if err != nil {
			return 0, err
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
		return time.Duration(ns), err
	}
	h.sign = func(edsignKey bool, d time.Duration) (rawRate, error) {
		var r rawRate
		which := 0 // crypto/ed25519, or 1: edsign
		if edsignKey {
			which = 1
		}
		if _, err := fmt.Fprintf(stdin, "sign %d %d\n", which, d.Nanoseconds()); err != nil {
			return r, err
		}
		l, err := out.ReadString('\n')
		if err != nil {
			return r, err
		}
		if _, err := fmt.Sscan(l, &r.count, &r.wall, &r.cpu); err != nil || r.count == 0 {
			return r, fmt.Errorf("issuer process answered %q to sign: %v", l, err)
		}
		return r, nil
	}
	return h, nil
}

// runServe serves for an external load generator (wrk).
func runServe(o opts) error {
	s, err := startIssuer(o)
	if err != nil {
		return err
	}
	defer s.close()
	bodies, err := makeBodies(o, s.url, s.secretID, s.secret)
	if err != nil {
		return err
	}
	f, err := os.Create(o.bodiesFile)
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
	if o.form == "server" {
		auth = basicAuth(s.secretID, s.secret)
	}
	fmt.Printf("ready %s/v1/token %s\n", s.url, auth)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// makeBodies makes the n request bodies; assertions each have their own jti.
func makeBodies(o opts, url, secretID, secret string) ([][]byte, error) {
	bodies := make([][]byte, o.n)
	for i := range bodies {
		switch o.form {
		case "assertion":
			now := time.Now()
			cl := &chain.AssertionClaims{}
			cl.Issuer, cl.Subject, cl.Audience = "load", fmt.Sprintf("u%d", i%1000), []string{url}
			cl.IssuedAt, cl.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(4*time.Minute))
			cl.ID = rand.Text()
			tok, err := chain.MintAssertion(chain.Secret{ID: secretID, Customer: "load", Value: []byte(secret)}, cl, "HS256", false)
			if err != nil {
				return nil, err
			}
			bodies[i], _ = json.Marshal(map[string]string{"assertion": tok})
		case "server":
			bodies[i], _ = json.Marshal(map[string]any{"sub": fmt.Sprintf("u%d", i%1000)})
		case "healthz":
		default:
			return nil, fmt.Errorf("form %q", o.form)
		}
	}
	return bodies, nil
}

func run(o opts) error {
	var h *issuerHandle
	switch o.serverKind {
	case "child":
		var err error
		if h, err = startChild(o); err != nil {
			return err
		}
	case "inprocess":
		s, err := startIssuer(o)
		if err != nil {
			return err
		}
		h = &issuerHandle{url: s.url, secretID: s.secretID, secret: s.secret, close: s.close,
			cpu: func() (time.Duration, error) { return cpuTime(), nil }, sign: localSigns(o.alg)}
		if o.cpuprofile != "" {
			f, err := os.Create(o.cpuprofile)
			if err != nil {
				return err
			}
			defer f.Close()
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	default:
		return fmt.Errorf("server %q", o.serverKind)
	}
	defer h.close()
	bodies, err := makeBodies(o, h.url, h.secretID, h.secret)
	if err != nil {
		return err
	}
	var do func(conn int, next *atomic.Int64, limit int64, lat []time.Duration) (failures int64, err error)
	switch o.clientKind {
	case "raw", "spin":
		do, err = rawClient(o, h, bodies)
	case "nethttp":
		do = netHTTPClient(o, h, bodies)
	default:
		err = fmt.Errorf("client %q", o.clientKind)
	}
	if err != nil {
		return err
	}

	lat := make([]time.Duration, o.n)
	var next atomic.Int64
	var failures atomic.Int64
	const rounds = 5
	var httpTime, clientCPU, serverCPU time.Duration
	var raw, fast rawRate // crypto/ed25519 (or the key's crypto.Signer); edsign
	sign := h.sign
	switch o.rawWhere {
	case "issuer":
	case "client":
		sign = localSigns(o.alg)
	default:
		return fmt.Errorf("-raw %q: issuer or client", o.rawWhere)
	}
	for round := range rounds {
		d := o.signFor / rounds
		if o.alg == chain.AlgEdDSA {
			d /= 2
			r, err := sign(true, d)
			if err != nil {
				return err
			}
			fast.add(r)
		}
		r, err := sign(false, d)
		if err != nil {
			return err
		}
		raw.add(r)
		limit := int64(o.n * (round + 1) / rounds)
		s0, err := h.cpu()
		if err != nil {
			return err
		}
		c0 := cpuTime()
		start := time.Now()
		var wg sync.WaitGroup
		var errMu sync.Mutex
		var firstErr error
		for conn := range o.conc {
			wg.Go(func() {
				f, err := do(conn, &next, limit, lat)
				failures.Add(f)
				if err != nil {
					errMu.Lock()
					firstErr = cmp.Or(firstErr, err)
					errMu.Unlock()
				}
			})
		}
		wg.Wait()
		httpTime += time.Since(start)
		clientCPU += cpuTime() - c0
		s1, err := h.cpu()
		if err != nil {
			return err
		}
		serverCPU += s1 - s0
		if firstErr != nil {
			return firstErr
		}
	}
	signRate := raw.rate()
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)].Round(time.Microsecond) }
	rate := float64(o.n) / httpTime.Seconds()
	signCPUPer := raw.cpuPer()
	serverPer := serverCPU / time.Duration(o.n)
	clientPer := clientCPU / time.Duration(o.n)
	if o.serverKind == "inprocess" {
		clientPer = 0 // counted in serverPer: one process
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("form=%s store=%s jti=%s log=%s server=%s client=%s alg=%s n=%d c=%d issuer-cpus=%q failures=%d\n",
		o.form, o.storeKind, o.jti, o.logKind, o.serverKind, o.clientKind, o.alg, o.n, o.conc, o.issuerCPUs, failures.Load())
	fmt.Printf("raw %s signs/s (measured in the %s process, on its cores, issuer idle): %.0f, CPU %s per sign\n", o.alg, o.rawWhere, signRate, signCPUPer)
	if fast.count > 0 {
		fmt.Printf("the issuer's signer (edsign, batched), same rounds: %.0f signs/s, CPU %s per sign (%.2f of crypto/ed25519's)\n",
			fast.rate(), fast.cpuPer(), float64(fast.cpuPer())/float64(signCPUPer))
	}
	fmt.Printf("tokens/s over HTTP: %.0f = %.0f%% of raw signs/s; latency p50 %s p99 %s\n", rate, 100*rate/signRate, pct(0.50), pct(0.99))
	if fast.count > 0 {
		fmt.Printf("tokens/s over HTTP = %.0f%% of edsign signs/s; edsign CPU per sign / issuer CPU per token = %.0f%%\n",
			100*rate/fast.rate(), 100*float64(fast.cpuPer())/float64(serverPer))
	}
	if o.serverKind == "inprocess" {
		fmt.Printf("CPU per token (issuer and client, one process): %s = %.2f signs\n", serverPer, float64(serverPer)/float64(signCPUPer))
	} else {
		fmt.Printf("issuer CPU per token: %s = %.2f signs (CPU per sign / issuer CPU per token = %.0f%%); client CPU per token %s\n",
			serverPer, float64(serverPer)/float64(signCPUPer), 100*float64(signCPUPer)/float64(serverPer), clientPer)
	}
	row := fmt.Sprintf("| %s | %s/%s | %s | %s | %d | %.0f | %.0f | %.0f%% | %s | %s | %.1f | %.1f | %.1f | %.0f%% |",
		o.form, o.storeKind, o.jti, o.logKind, o.clientKind, o.conc, signRate, rate, 100*rate/signRate, pct(0.50), pct(0.99),
		float64(signCPUPer)/1e3, float64(serverPer)/1e3, float64(clientPer)/1e3, 100*float64(signCPUPer)/float64(serverPer))
	if fast.count > 0 { // and the same against the issuer's own signer
		row += fmt.Sprintf(" %.1f | %.0f%% |", float64(fast.cpuPer())/1e3, 100*float64(fast.cpuPer())/float64(serverPer))
	}
	fmt.Println(row)
	if failures.Load() > 0 {
		return fmt.Errorf("%d requests failed", failures.Load())
	}
	return nil
}

// rawClient returns a worker that keeps one connection open and writes
// prebuilt requests on it, reading each answer before the next request.
func rawClient(o opts, h *issuerHandle, bodies [][]byte) (func(int, *atomic.Int64, int64, []time.Duration) (int64, error), error) {
	host := strings.TrimPrefix(h.url, "http://")
	reqs := make([][]byte, o.n)
	for i := range reqs {
		var b bytes.Buffer
		if o.form == "healthz" {
			fmt.Fprintf(&b, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		} else {
			fmt.Fprintf(&b, "POST /v1/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", host, len(bodies[i]))
			if o.form == "server" {
				fmt.Fprintf(&b, "Authorization: %s\r\n", basicAuth(h.secretID, h.secret))
			}
			b.WriteString("\r\n")
			b.Write(bodies[i])
		}
		reqs[i] = b.Bytes()
	}
	conns := make([]net.Conn, o.conc)
	readers := make([]*bufio.Reader, o.conc)
	return func(k int, next *atomic.Int64, limit int64, lat []time.Duration) (int64, error) {
		if conns[k] == nil {
			c, err := net.Dial("tcp", host)
			if err != nil {
				return 0, err
			}
			var r io.Reader = c
			if o.clientKind == "spin" {
				rc, err := c.(*net.TCPConn).SyscallConn()
				if err != nil {
					return 0, err
				}
				r = spinReader{rc}
			}
			conns[k], readers[k] = c, bufio.NewReaderSize(r, 16<<10)
		}
		c, br := conns[k], readers[k]
		var failures int64
		for {
			i := next.Add(1) - 1
			if i >= limit {
				next.Add(-1)
				return failures, nil
			}
			t0 := time.Now()
			if _, err := c.Write(reqs[i]); err != nil {
				return failures, err
			}
			code, err := readResponse(br)
			if err != nil {
				return failures, err
			}
			lat[i] = time.Since(t0)
			if code != http.StatusOK {
				failures++
			}
		}
	}, nil
}

// spinReader reads a socket without ever sleeping in the network poller:
// a read that finds nothing yields to the other connections' goroutines
// and tries again.
type spinReader struct{ rc syscall.RawConn }

func (s spinReader) Read(p []byte) (int, error) {
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr == syscall.EAGAIN {
				runtime.Gosched()
				continue
			}
			if n == 0 && rerr == nil {
				rerr = io.EOF
			}
			if n < 0 {
				n = 0
			}
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// readResponse reads one HTTP/1.1 response and returns its status code;
// the body (Content-Length or chunked) is read and dropped.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	switch {
	case chunked:
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return 0, err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 32)
			if err != nil {
				return 0, fmt.Errorf("bad chunk size %q", line)
			}
			if _, err := br.Discard(int(size) + 2); err != nil {
				return 0, err
			}
			if size == 0 {
				return code, nil
			}
		}
	case length >= 0:
		_, err := br.Discard(length)
		return code, err
	}
	return 0, errors.New("response without Content-Length or chunked body")
}

// netHTTPClient returns a worker using a shared net/http client.
func netHTTPClient(o opts, h *issuerHandle, bodies [][]byte) func(int, *atomic.Int64, int64, []time.Duration) (int64, error) {
	tr := &http.Transport{MaxIdleConns: o.conc, MaxIdleConnsPerHost: o.conc, MaxConnsPerHost: o.conc}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	basic := basicAuth(h.secretID, h.secret)
	return func(_ int, next *atomic.Int64, limit int64, lat []time.Duration) (int64, error) {
		var failures int64
		for {
			i := next.Add(1) - 1
			if i >= limit {
				next.Add(-1)
				return failures, nil
			}
			req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/token", bytes.NewReader(bodies[i]))
			if o.form == "healthz" {
				req, _ = http.NewRequest(http.MethodGet, h.url+"/healthz", nil)
			}
			req.Header.Set("Content-Type", "application/json")
			if o.form == "server" {
				req.Header.Set("Authorization", basic)
			}
			t0 := time.Now()
			res, err := client.Do(req)
			if err != nil {
				failures++
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			lat[i] = time.Since(t0)
			if res.StatusCode != http.StatusOK {
				failures++
			}
		}
	}
}

// rawRate adds up raw signing rounds.
type rawRate struct {
	count     int64
	wall, cpu time.Duration
}

// measure adds a round of rawSigns in this process.
func (r *rawRate) measure(alg string, edsignKey bool, d time.Duration) {
	c0 := cpuTime()
	k, wall := rawSigns(alg, edsignKey, d)
	r.cpu += cpuTime() - c0
	r.count += k
	r.wall += wall
}

func (r *rawRate) rate() float64         { return float64(r.count) / r.wall.Seconds() }
func (r *rawRate) cpuPer() time.Duration { return r.cpu / time.Duration(r.count) }

// add adds the rounds of o.
func (r *rawRate) add(o rawRate) {
	r.count += o.count
	r.wall += o.wall
	r.cpu += o.cpu
}

// localSigns measures raw signing in this process.
func localSigns(alg string) func(bool, time.Duration) (rawRate, error) {
	return func(edsignKey bool, d time.Duration) (rawRate, error) {
		var r rawRate
		r.measure(alg, edsignKey, d)
		return r, nil
	}
}

// rawSigns signs, with the key's signing primitive alone (ed25519.Sign for
// EdDSA; the crypto.Signer over a SHA-256 digest for ES256 and RS256), the
// signing input of an edge token like those the issuer writes, on every
// core, for about d; it returns how many signatures and how long it took.
// No JSON, base64 or JWT code runs: crypto/ed25519's rate is the one the
// issuer's tokens per second are compared with. With edsignKey it signs
// with the issuer's own signer instead, from 8 goroutines per core so that
// its batches form as they do in a busy issuer.
func rawSigns(alg string, edsignKey bool, d time.Duration) (int64, time.Duration) {
	key, err := chain.GenerateSigningKey(alg, time.Now())
	if err != nil {
		panic(err)
	}
	key.State = chain.KeyActive
	claims := &chain.EdgeClaims{CID: "load", SIP: chain.SIPGrant{AOR: "sip:u1@load.example", Methods: []string{"REGISTER", "INVITE", "MESSAGE"}}}
	claims.Issuer, claims.Subject, claims.Audience, claims.ID = "http://127.0.0.1:8080", "u1", []string{"sip:trunk.example.net"}, "8HqIbW0p8Vd3Zs4QxO3kPw"
	claims.IssuedAt, claims.NotBefore, claims.ExpiresAt = jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now().Add(time.Minute))
	tok, err := chain.MintEdgeToken(key, claims)
	if err != nil {
		panic(err)
	}
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	var fast *edsign.PrivateKey
	if priv, ok := key.Private.(ed25519.PrivateKey); ok && edsignKey {
		if fast, err = edsign.New(priv); err != nil {
			panic(err)
		}
	}
	sign := func() error {
		if fast != nil {
			_, err := fast.Sign(nil, input, crypto.Hash(0))
			return err
		}
		if priv, ok := key.Private.(ed25519.PrivateKey); ok {
			ed25519.Sign(priv, input)
			return nil
		}
		digest := sha256.Sum256(input)
		_, err := key.Private.Sign(rand.Reader, digest[:], crypto.SHA256)
		return err
	}
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	workers := runtime.GOMAXPROCS(0)
	if fast != nil {
		workers *= 8 // as many signers as requests in flight, so that batches form
	}
	for range workers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := sign(); err != nil {
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return count.Load(), time.Since(start)
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
