package customersite

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SessionCookie is the name of the login cookie.
const SessionCookie = "customer_site_session"

// sessionSigner makes and checks stateless login cookies:
// base64url(user) "." expiry "." base64url(HMAC-SHA256(key, user "." expiry)),
// under a key that lives as long as the process.
type sessionSigner struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

func newSessionSigner(ttl time.Duration, now func() time.Time) (sessionSigner, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return sessionSigner{}, fmt.Errorf("session key: %w", err)
	}
	return sessionSigner{key: key, ttl: ttl, now: now}, nil
}

func (s sessionSigner) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s sessionSigner) cookie(user string, secure bool) *http.Cookie {
	exp := s.now().Add(s.ttl)
	payload := base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + strconv.FormatInt(exp.Unix(), 10)
	return &http.Cookie{
		Name: SessionCookie, Value: payload + "." + s.mac(payload),
		Path: "/", Expires: exp, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
}

func (s sessionSigner) clear(secure bool) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
}

// user returns the logged-in visitor of r, if its cookie is genuine and
// unexpired.
func (s sessionSigner) user(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || len(c.Value) > 512 {
		return "", false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := c.Value[:i], c.Value[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return "", false
	}
	u64, expStr, ok := strings.Cut(payload, ".")
	if !ok {
		return "", false
	}
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return "", false
	}
	user, err := base64.RawURLEncoding.DecodeString(u64)
	if err != nil || !userPattern.Match(user) {
		return "", false
	}
	return string(user), true
}
