package testpeer

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

//go:embed kamailio.cfg.tmpl
var kamailioTemplateText string

var kamailioTemplate = template.Must(template.New("kamailio.cfg").Parse(kamailioTemplateText))

// KamailioModulePaths are searched, in order, for Kamailio's modules.
var KamailioModulePaths = []string{
	"/usr/lib/x86_64-linux-gnu/kamailio/modules",
	"/usr/lib/aarch64-linux-gnu/kamailio/modules",
	"/usr/lib64/kamailio/modules",
	"/usr/lib/kamailio/modules",
	"/usr/local/lib64/kamailio/modules",
	"/usr/local/lib/kamailio/modules",
}

// FindKamailioModules returns the first directory of KamailioModulePaths
// that holds auth_ephemeral.so, or "".
func FindKamailioModules() string {
	for _, dir := range KamailioModulePaths {
		if _, err := os.Stat(filepath.Join(dir, "auth_ephemeral.so")); err == nil {
			return dir
		}
	}
	return ""
}

// KamailioConfig is the data the Kamailio configuration template is
// rendered with (see kamailio.cfg.tmpl and examples/kamailio/kamailio.cfg).
type KamailioConfig struct {
	Listen      string   // IP address to listen on (UDP)
	Port        int      // UDP port
	Realm       string   // Digest realm of the challenge
	Secrets     []string // auth_ephemeral secrets, the newest first
	SHA         string   // "sha1" (default), "sha256", "sha384" or "sha512"
	ModulePath  string   // directory of the *.so modules
	Children    int      // UDP worker processes
	NonceSecret string   // auth module secret for nonces
}

// shaAlgorithm maps a hash name to auth_ephemeral's sha_algorithm value
// (0 = SHA-1, 1 = SHA-256, 2 = SHA-384, 3 = SHA-512).
func shaAlgorithm(name string) (int, string, error) {
	switch strings.ToLower(strings.ReplaceAll(name, "-", "")) {
	case "", "sha1":
		return 0, "SHA1", nil
	case "sha256":
		return 1, "SHA256", nil
	case "sha384":
		return 2, "SHA384", nil
	case "sha512":
		return 3, "SHA512", nil
	}
	return 0, "", fmt.Errorf("unknown hash %q (want sha1, sha256, sha384 or sha512)", name)
}

// RenderKamailioConfig renders the Kamailio configuration for c.
func RenderKamailioConfig(c KamailioConfig) ([]byte, error) {
	alg, hashName, err := shaAlgorithm(c.SHA)
	if err != nil {
		return nil, err
	}
	if len(c.Secrets) == 0 {
		return nil, fmt.Errorf("kamailio config: at least one secret is needed")
	}
	for _, s := range append([]string{c.Realm, c.NonceSecret, c.ModulePath, c.Listen}, c.Secrets...) {
		if strings.ContainsAny(s, "\"\\\n\r") {
			return nil, fmt.Errorf("kamailio config: value %q holds a quote, backslash or newline", s)
		}
	}
	if c.Port <= 0 || c.Port > 65535 || c.Realm == "" || c.Listen == "" || c.ModulePath == "" || c.NonceSecret == "" {
		return nil, fmt.Errorf("kamailio config: Port, Realm, Listen, ModulePath and NonceSecret are required")
	}
	if c.Children <= 0 {
		c.Children = 2
	}
	data := struct {
		KamailioConfig
		SHAAlgorithm int
		HashName     string
	}{c, alg, hashName}
	var b bytes.Buffer
	if err := kamailioTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ExampleKamailioConfig is the configuration shipped as
// examples/kamailio/kamailio.cfg: the template rendered with placeholders.
var ExampleKamailioConfig = KamailioConfig{
	Listen:      "127.0.0.1",
	Port:        5060,
	Realm:       "trunk.example.net",
	Secrets:     []string{"CHANGE-ME-shared-secret"},
	ModulePath:  "/usr/lib/x86_64-linux-gnu/kamailio/modules",
	Children:    4,
	NonceSecret: "CHANGE-ME-nonce-secret",
}

// KamailioOptions configure StartKamailio.
type KamailioOptions struct {
	Port    int      // UDP port on 127.0.0.1; 0 picks a free one
	Realm   string   // Digest realm; default "trunk.test"
	Secrets []string // auth_ephemeral secrets, newest first; required
	SHA     string   // "sha1" (default), "sha256", "sha384", "sha512"
}

// Kamailio is a running Kamailio registrar with auth_ephemeral.
type Kamailio struct {
	Port       int    // UDP port on 127.0.0.1
	Addr       string // "127.0.0.1:port"
	Realm      string
	ConfigPath string
	d          *daemon
}

// Output returns what Kamailio logged so far.
func (k *Kamailio) Output() string { return k.d.out.String() }

// Stop stops Kamailio (SIGTERM, then SIGKILL) and waits for it. It also
// runs on t.Cleanup; calling it twice is harmless.
func (k *Kamailio) Stop() { k.d.stop() }

// StartKamailio writes a configuration into t.TempDir(), starts kamailio
// in the foreground and returns once it answers OPTIONS on UDP (10 s at
// most). It is stopped when the test ends.
func StartKamailio(t testing.TB, o KamailioOptions) *Kamailio {
	t.Helper()
	bin := Require(t, "kamailio", "apt-get install kamailio kamailio-autheph-modules")
	mods := FindKamailioModules()
	if mods == "" {
		missing(t, "kamailio auth_ephemeral module", "apt-get install kamailio-autheph-modules")
	}
	if o.Port == 0 {
		o.Port = FreePort(t, "udp")
	}
	if o.Realm == "" {
		o.Realm = "trunk.test"
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	cfg, err := RenderKamailioConfig(KamailioConfig{
		Listen:      "127.0.0.1",
		Port:        o.Port,
		Realm:       o.Realm,
		Secrets:     o.Secrets,
		SHA:         o.SHA,
		ModulePath:  mods,
		Children:    2,
		NonceSecret: hex.EncodeToString(nonce),
	})
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	// -DD: stay in the foreground (no daemon), -E: log to stderr,
	// -w: working directory, -Y: runtime directory (instead of
	// /var/run/kamailio), -m/-M: shared/private memory in MB.
	cmd := exec.Command(bin, "-DD", "-E", "-f", path, "-w", dir, "-Y", run, "-m", "64", "-M", "8")
	cmd.Dir = dir
	k := &Kamailio{Port: o.Port, Addr: fmt.Sprintf("127.0.0.1:%d", o.Port), Realm: o.Realm, ConfigPath: path}
	k.d = startDaemon(t, "kamailio", cmd)
	seq := 0
	err = waitUDP(k.d, k.Addr, 10*time.Second, func() []byte {
		seq++
		return []byte(optionsRequest(k.Addr, seq))
	}, func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("SIP/2.0 200"))
	})
	if err != nil {
		t.Fatalf("testpeer: %v\n%s", err, Tail(k.Output(), 4000))
	}
	return k
}

// optionsRequest is a SIP OPTIONS request to addr, used as a readiness
// probe.
func optionsRequest(addr string, seq int) string {
	branch := make([]byte, 8)
	_, _ = rand.Read(branch)
	b := hex.EncodeToString(branch)
	return fmt.Sprintf("OPTIONS sip:%[1]s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK%[2]s;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=%[2]s\r\n"+
		"To: <sip:%[1]s>\r\n"+
		"Call-ID: probe-%[2]s\r\n"+
		"CSeq: %[3]d OPTIONS\r\n"+
		"Content-Length: 0\r\n\r\n", addr, b, seq)
}
