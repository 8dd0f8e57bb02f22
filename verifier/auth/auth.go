package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/chain"
)

// Authenticator proves who sent a SIP request.
type Authenticator interface {
	// Authenticate checks the credentials req carries. It returns
	// ErrNoCredentials (wrapped) when req carries none of its kind, and an
	// error wrapping ErrInvalidCredentials or ErrStaleNonce when they do
	// not verify.
	Authenticate(ctx context.Context, req *sip.Request, src netip.AddrPort) (*Identity, error)
}

// Identity is what verified credentials prove.
type Identity struct {
	// Authenticator names the authenticator that verified it
	// ("bearer", "introspection", "hs_profile", "digest").
	Authenticator string
	// User is the SIP user (the token's sub, the ephemeral user).
	User string
	// AOR is the address of record the holder may use: a full SIP URI
	// ("sip:alice@acme.example") or a bare user ("alice") when the
	// credential names no host.
	AOR string
	// Customer is the customer the credential was issued for, if known.
	Customer string
	// Grant is the token's sip grant; nil when the credential carries none
	// (Digest), in which case only the AOR is checked.
	Grant *chain.SIPGrant
	// ExpiresAt is when the credential stops being valid.
	ExpiresAt time.Time
	// KeyID is the kid of the issuer key that verified an edge token ("" for
	// other credentials): a cached identity whose key has left the JWKS is
	// no longer trusted.
	KeyID string
}

// Errors of the authenticators; match them with errors.Is.
var (
	// ErrNoCredentials means the request carries no credentials of the
	// authenticator's kind.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidCredentials means credentials were presented but are
	// forged, expired, malformed or meant for someone else.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrStaleNonce means a Digest answer was right but its nonce is too
	// old: the client should retry with a fresh one (stale=true).
	ErrStaleNonce = errors.New("stale nonce")
	// ErrUnavailable means the authenticator could not reach a server it
	// needs (introspection, JWKS) and has nothing cached.
	ErrUnavailable = errors.New("authentication server unavailable")
)

// "Not my kind" answers of the authenticators, made once: a chain asks
// every authenticator about every request, and formatting these each
// time was a measurable share of a Digest REGISTER's CPU.
var (
	errBearerNone        = fmt.Errorf("bearer: %w", ErrNoCredentials)
	errBearerHMAC        = fmt.Errorf("bearer: HMAC token: %w", ErrNoCredentials)
	errBearerOpaque      = fmt.Errorf("bearer: opaque token: %w", ErrNoCredentials)
	errDigestNone        = fmt.Errorf("digest: %w", ErrNoCredentials)
	errHSNone            = fmt.Errorf("hs profile: %w", ErrNoCredentials)
	errIntrospectionNone = fmt.Errorf("introspection: %w", ErrNoCredentials)
)

// Scheme of presented credentials.
const (
	SchemeBearer = "Bearer"
	SchemeDigest = "Digest"
)

// Credentials returns the scheme and value of the first credentials req
// carries in Authorization or Proxy-Authorization. A value without a
// scheme is a bare Bearer token (JsSIP authorization_jwt set to the token
// alone). CANCEL and ACK carry no credentials.
func Credentials(req *sip.Request) (scheme, value string, ok bool) {
	if req.Method == sip.CANCEL || req.Method == sip.ACK {
		return "", "", false
	}
	// req.GetHeaders lower-cases every header name it passes (an
	// allocation for each name sipgo does not know); EqualFold does not.
	for _, name := range [...]string{"Authorization", "Proxy-Authorization"} {
		for _, h := range req.Headers() {
			if !strings.EqualFold(h.Name(), name) {
				continue
			}
			if s, v, ok := SplitCredentials(h.Value()); ok {
				return s, v, true
			}
		}
	}
	return "", "", false
}

// SplitCredentials splits an Authorization header value into its scheme
// (Bearer or Digest, matched case-insensitively) and the rest. A value
// with no recognised scheme that looks like one token is a bare Bearer.
func SplitCredentials(v string) (scheme, value string, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "Bearer") || strings.EqualFold(v, "Digest") {
		return "", "", false
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		t := strings.TrimSpace(v[7:])
		return SchemeBearer, t, t != ""
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "Digest ") {
		return SchemeDigest, strings.TrimSpace(v[7:]), true
	}
	if strings.ContainsAny(v, " \t,=\"") && strings.Count(v, ".") != 2 {
		return "", "", false // some other scheme
	}
	if strings.ContainsAny(v, " \t,\"") {
		return "", "", false
	}
	return SchemeBearer, v, true
}

// BearerToken returns the Bearer token req carries.
func BearerToken(req *sip.Request) (string, bool) {
	s, v, ok := Credentials(req)
	if !ok || s != SchemeBearer {
		return "", false
	}
	return v, true
}

// Chain tries authenticators in order: the first that finds credentials of
// its kind decides. It returns ErrNoCredentials when none does.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(ctx context.Context, req *sip.Request, src netip.AddrPort) (*Identity, error) {
	for _, a := range c {
		id, err := a.Authenticate(ctx, req, src)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return id, err
	}
	return nil, ErrNoCredentials
}

func nowFunc(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}

var _ Authenticator = Chain(nil)
