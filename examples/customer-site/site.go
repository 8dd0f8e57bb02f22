package customersite

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
)

// Defaults of Options.
const (
	DefaultCredentialTTL = 60 * time.Second
	DefaultSessionTTL    = 8 * time.Hour
	// DefaultJSSIPPath is where `npm run build:jssip` writes the bundle,
	// relative to the repository root.
	DefaultJSSIPPath = "examples/customer-site/static/jssip.min.js"
	// jssipFile is the bundle's name under /static/.
	jssipFile = "jssip.min.js"
	// maxBody bounds request bodies.
	maxBody = 4 << 10
)

// JSSIPMissing is the body of the 404 served when the JsSIP bundle is absent.
const JSSIPMissing = "JsSIP bundle missing: run `npm ci && npm run build:jssip` in the repository root, then reload.\n"

//go:embed static
var embedded embed.FS

// userPattern is what the fake login accepts as a visitor name: it becomes
// the SIP user part.
var userPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Options configure a Site.
type Options struct {
	// CustomerID is the customer's id at the issuer: the iss of assertions.
	CustomerID string
	// SecretID names the secret in the kid header of assertions.
	SecretID string
	// Secret is the customer's shared secret, used as given. Required.
	Secret []byte
	// IssuerURL is the hosted issuer (aud of assertions; the browser posts
	// to IssuerURL + "/v1/token"). Required.
	IssuerURL string
	// EchoURI is the SIP URI the page's "Call echo" button dials; empty
	// means sip:echo@<realm of the token response>.
	EchoURI string
	// CredentialTTL is the lifetime of assertions and ephemeral
	// credentials; DefaultCredentialTTL when zero, at most
	// chain.DefaultAssertionLifetime.
	CredentialTTL time.Duration
	// SessionTTL is the lifetime of a login; DefaultSessionTTL when zero.
	SessionTTL time.Duration
	// JSSIPPath is a JsSIP bundle on disk served as /static/jssip.min.js
	// when it exists; the embedded copy (if built in) otherwise.
	JSSIPPath string
	// SecureCookies marks the session cookie Secure (sites served over HTTPS).
	SecureCookies bool
	// Assets replaces the embedded static files (a directory holding
	// index.html, legacy.html, app.js, style.css); nil uses the embedded ones.
	Assets fs.FS
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives one line per login and minted credential (never the
	// credential itself); discarded when nil.
	Logger *slog.Logger
}

// Site is the customer website: pages, fake login and credential minting.
// It is an http.Handler.
type Site struct {
	opts     Options
	secret   chain.Secret
	sessions sessionSigner
	assets   fs.FS
	log      *slog.Logger
	mux      *http.ServeMux
}

var _ http.Handler = (*Site)(nil)

// New validates opts, fills defaults and builds the Site.
func New(opts Options) (*Site, error) {
	if opts.CustomerID == "" {
		return nil, errors.New("customersite: customer id is required")
	}
	if len(opts.Secret) == 0 {
		return nil, errors.New("customersite: customer secret is required")
	}
	u, err := url.Parse(opts.IssuerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("customersite: issuer URL %q: want http(s)://host[:port]", opts.IssuerURL)
	}
	opts.IssuerURL = strings.TrimSuffix(opts.IssuerURL, "/")
	if opts.CredentialTTL == 0 {
		opts.CredentialTTL = DefaultCredentialTTL
	}
	if opts.CredentialTTL < time.Second || opts.CredentialTTL > chain.DefaultAssertionLifetime {
		return nil, fmt.Errorf("customersite: credential lifetime %s: want 1s..%s", opts.CredentialTTL, chain.DefaultAssertionLifetime)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	assets := opts.Assets
	if assets == nil {
		assets, err = fs.Sub(embedded, "static")
		if err != nil {
			return nil, fmt.Errorf("customersite: embedded files: %w", err)
		}
	}
	sessions, err := newSessionSigner(opts.SessionTTL, opts.Now)
	if err != nil {
		return nil, fmt.Errorf("customersite: %w", err)
	}
	s := &Site{
		opts: opts,
		secret: chain.Secret{
			ID:       opts.SecretID,
			Customer: opts.CustomerID,
			Value:    append([]byte(nil), opts.Secret...),
		},
		sessions: sessions,
		assets:   assets,
		log:      log,
		mux:      http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /{$}", s.page("index.html"))
	s.mux.HandleFunc("GET /legacy", s.page("legacy.html"))
	s.mux.HandleFunc("GET /static/{file}", s.static)
	s.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /api/config", s.config)
	s.mux.HandleFunc("GET /api/me", s.me)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("POST /api/assertion", s.assertion)
	s.mux.HandleFunc("POST /api/ephemeral", s.ephemeral)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// page serves one HTML page with a policy that runs only this site's scripts.
func (s *Site) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(s.assets, name)
		if err != nil {
			http.Error(w, "page missing from this build", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy",
			"default-src 'self'; script-src 'self'; style-src 'self'; connect-src *; media-src * blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	}
}

// static serves app.js, style.css and the JsSIP bundle.
func (s *Site) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name != path.Base(name) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".html") {
		http.NotFound(w, r)
		return
	}
	var b []byte
	var err error
	if name == jssipFile && s.opts.JSSIPPath != "" {
		b, err = os.ReadFile(s.opts.JSSIPPath)
	}
	if b == nil {
		b, err = fs.ReadFile(s.assets, name)
	}
	if err != nil {
		if name == jssipFile {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, JSSIPMissing)
			return
		}
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// siteConfig is what the page needs to know before it logs in.
type siteConfig struct {
	Issuer   string `json:"issuer"`
	Customer string `json:"customer"`
	EchoURI  string `json:"echo_uri,omitempty"`
}

func (s *Site) config(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, siteConfig{Issuer: s.opts.IssuerURL, Customer: s.opts.CustomerID, EchoURI: s.opts.EchoURI})
}

type loginRequest struct {
	User string `json:"user"`
}

type userResponse struct {
	User string `json:"user"`
}

func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !userPattern.MatchString(req.User) {
		writeError(w, http.StatusBadRequest, "invalid_request", "user: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
		return
	}
	http.SetCookie(w, s.sessions.cookie(req.User, s.opts.SecureCookies))
	s.log.Info("customer-site: visitor logged in", "user", req.User)
	writeJSON(w, http.StatusOK, userResponse{User: req.User})
}

func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.sessions.clear(s.opts.SecureCookies))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Site) me(w http.ResponseWriter, r *http.Request) {
	user, ok := s.sessions.user(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "login_required", "log in first")
		return
	}
	writeJSON(w, http.StatusOK, userResponse{User: user})
}

// AssertionResponse is the body of POST /api/assertion.
type AssertionResponse struct {
	Assertion string `json:"assertion"`
	Issuer    string `json:"issuer"`
	ExpiresIn int64  `json:"expires_in"`
}

func (s *Site) assertion(w http.ResponseWriter, r *http.Request) {
	user, ok := s.sessions.user(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "login_required", "log in first")
		return
	}
	now := s.opts.Now()
	jti, err := randomID()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "no randomness")
		return
	}
	claims := &chain.AssertionClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    s.opts.CustomerID,
		Subject:   user,
		Audience:  jwt.ClaimStrings{s.opts.IssuerURL},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.opts.CredentialTTL)),
		ID:        jti,
	}}
	tok, err := chain.MintAssertion(s.secret, claims, "HS256", s.secret.ID == "")
	if err != nil {
		s.log.Error("customer-site: mint assertion", "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "could not mint an assertion")
		return
	}
	s.log.Info("customer-site: assertion minted", "user", user, "jti", jti)
	writeJSON(w, http.StatusOK, AssertionResponse{Assertion: tok, Issuer: s.opts.IssuerURL, ExpiresIn: int64(s.opts.CredentialTTL / time.Second)})
}

// EphemeralResponse is the body of POST /api/ephemeral: exactly what the
// browser sends on to the issuer's /v1/token, plus where and until when.
type EphemeralResponse struct {
	Customer  string `json:"customer"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	ExpiresAt int64  `json:"expires_at"`
	Issuer    string `json:"issuer"`
}

func (s *Site) ephemeral(w http.ResponseWriter, r *http.Request) {
	user, ok := s.sessions.user(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "login_required", "log in first")
		return
	}
	expiry := s.opts.Now().Add(s.opts.CredentialTTL)
	username, password, err := chain.MintEphemeral(s.secret.Value, user, expiry, chain.EphemeralFormat{})
	if err != nil {
		s.log.Error("customer-site: mint ephemeral credential", "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "could not mint a credential")
		return
	}
	s.log.Info("customer-site: ephemeral credential minted", "user", user, "expires_at", expiry.Unix())
	writeJSON(w, http.StatusOK, EphemeralResponse{
		Customer: s.opts.CustomerID, Username: username, Password: password,
		ExpiresAt: expiry.Unix(), Issuer: s.opts.IssuerURL,
	})
}

// decodeBody reads a small JSON or form body into v (a loginRequest).
func decodeBody(w http.ResponseWriter, r *http.Request, v *loginRequest) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return fmt.Errorf("form body: %w", err)
		}
		v.User = r.PostForm.Get("user")
		return nil
	case "application/json", "":
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return fmt.Errorf("body larger than %d bytes", maxBody)
			}
			return errors.New("body: want JSON {\"user\": \"...\"}")
		}
		return nil
	default:
		return fmt.Errorf("content type %q: want application/json", ct)
	}
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, errorBody{Error: code, Description: desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
