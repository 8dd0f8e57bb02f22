package auth

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/trunkpass/trunkpass/chain"
)

// NameDigest is the Digest authenticator's name.
const NameDigest = "digest"

// Digest algorithms (RFC 8760).
const (
	AlgMD5    = "MD5"
	AlgSHA256 = "SHA-256"
)

// DefaultNonceTTL is how long a Digest nonce is accepted before the answer
// is called stale.
const DefaultNonceTTL = 5 * time.Minute

// nonce layout: 8 bytes Unix nanoseconds, 8 random bytes, 16 bytes of
// HMAC-SHA256(key, ts || random || realm), base64url without padding.
const (
	nonceRaw = 8 + 8 + 16
	nonceLen = (nonceRaw*8 + 5) / 6
)

// ErrNonce means a nonce was not made by this edge (or another sharing its
// nonce key).
var ErrNonce = errors.New("nonce not ours")

// Digest authenticates SIP Digest answers made with ephemeral credentials
// in the Kamailio auth_ephemeral style: the username is "<expiry>:<user>"
// (user may be user@domain), the password the base64 HMAC of the username
// under one of the shared secrets (all tried, newest first). It supports
// MD5 and SHA-256, requires qop=auth, and checks nonces it made without
// storing them: a nonce carries its time and an HMAC under NonceKey.
type Digest struct {
	// Realm of the challenges and of HA1.
	Realm string
	// Verifier checks usernames and derives passwords.
	Verifier *chain.EphemeralVerifier
	// NonceKey protects nonces; edges sharing it accept each other's.
	NonceKey []byte
	// NonceTTL is how long a nonce stays fresh; DefaultNonceTTL when zero.
	NonceTTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// NewDigest makes a Digest authenticator whose nonce key derives from the
// first secret, so edges sharing the secrets accept each other's nonces.
func NewDigest(realm string, v *chain.EphemeralVerifier, ttl time.Duration) (*Digest, error) {
	if len(v.Secrets) == 0 {
		return nil, errors.New("digest: no ephemeral secret")
	}
	m := hmac.New(sha256.New, v.Secrets[0])
	m.Write([]byte("trunkpass digest nonce key\x00" + realm))
	return &Digest{Realm: realm, Verifier: v, NonceKey: m.Sum(nil), NonceTTL: ttl, Now: v.Now}, nil
}

// Challenges returns the header values of a Digest challenge: SHA-256
// first, then MD5, with stale=true when stale.
func (d *Digest) Challenges(stale bool) []string {
	n := d.Nonce()
	var b strings.Builder
	out := make([]string, 0, 2)
	for _, alg := range [...]string{AlgSHA256, AlgMD5} {
		b.Reset()
		b.WriteString(`Digest realm="`)
		b.WriteString(d.Realm)
		b.WriteString(`", nonce="`)
		b.WriteString(n)
		b.WriteString(`", algorithm=`)
		b.WriteString(alg)
		b.WriteString(`, qop="auth"`)
		if stale {
			b.WriteString(", stale=true")
		}
		out = append(out, b.String())
	}
	return out
}

// Nonce makes a fresh nonce.
func (d *Digest) Nonce() string {
	var raw [nonceRaw]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(nowFunc(d.Now)().UnixNano()))
	rand.Read(raw[8:16])
	d.nonceMAC(raw[:16], raw[16:16])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (d *Digest) nonceMAC(data, dst []byte) []byte {
	m := hmac.New(sha256.New, d.NonceKey)
	m.Write(data)
	m.Write([]byte(d.Realm))
	var sum [sha256.Size]byte
	return append(dst, m.Sum(sum[:0])[:16]...)
}

// CheckNonce reports whether nonce was made with NonceKey (ErrNonce if
// not) and is still fresh (ErrStaleNonce if not).
func (d *Digest) CheckNonce(nonce string) error {
	if len(nonce) != nonceLen {
		return ErrNonce
	}
	var raw [nonceRaw]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(nonce)); err != nil || n != nonceRaw {
		return ErrNonce
	}
	var buf [16]byte
	if !hmac.Equal(d.nonceMAC(raw[:16], buf[:0]), raw[16:]) {
		return ErrNonce
	}
	ttl := d.NonceTTL
	if ttl <= 0 {
		ttl = DefaultNonceTTL
	}
	made := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	age := nowFunc(d.Now)().Sub(made)
	if age > ttl || age < -time.Minute {
		return ErrStaleNonce
	}
	return nil
}

// ParseDigest parses the parameters of Digest credentials (the header
// value after "Digest ") and checks the ones this edge needs are there.
func ParseDigest(params string) (*digest.Credentials, error) {
	if len(params) > 4096 {
		return nil, fmt.Errorf("digest credentials too long: %w", chain.ErrTooLarge)
	}
	c, err := digest.ParseCredentials(digest.Prefix + params)
	if err != nil {
		return nil, fmt.Errorf("digest credentials: %w", chain.ErrMalformed)
	}
	switch {
	case c.Username == "", c.Nonce == "", c.Response == "", c.URI == "":
		return nil, fmt.Errorf("digest credentials: username, nonce, uri, response: %w", chain.ErrMissingClaim)
	}
	return c, nil
}

// Authenticate implements Authenticator.
func (d *Digest) Authenticate(_ context.Context, req *sip.Request, _ netip.AddrPort) (*Identity, error) {
	scheme, value, ok := Credentials(req)
	if !ok || scheme != SchemeDigest {
		return nil, fmt.Errorf("digest: %w", ErrNoCredentials)
	}
	return d.Verify(string(req.Method), value)
}

// Verify checks the Digest credentials params for a request of method.
func (d *Digest) Verify(method, params string) (*Identity, error) {
	c, err := ParseDigest(params)
	if err != nil {
		return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, err)
	}
	if c.Realm != d.Realm {
		return nil, fmt.Errorf("digest: realm: %w: %w", ErrInvalidCredentials, chain.ErrAudience)
	}
	var newHash func() hash.Hash
	switch strings.ToUpper(c.Algorithm) {
	case "", AlgMD5:
		newHash = md5.New
	case AlgSHA256:
		newHash = sha256.New
	default:
		return nil, fmt.Errorf("digest: algorithm: %w: %w", ErrInvalidCredentials, chain.ErrAlgorithm)
	}
	if c.QOP != "auth" || c.Cnonce == "" || c.Nc <= 0 {
		return nil, fmt.Errorf("digest: qop=auth, cnonce and nc required: %w: %w", ErrInvalidCredentials, chain.ErrMalformed)
	}
	nonceErr := d.CheckNonce(c.Nonce)
	if errors.Is(nonceErr, ErrNonce) {
		return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, nonceErr)
	}
	user, expiry, err := d.Verifier.CheckUsername(c.Username)
	if err != nil {
		return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, err)
	}
	ha2 := hexHash(newHash, method, ":", c.URI)
	nc := strconv.FormatInt(int64(c.Nc), 16)
	nc = strings.Repeat("0", max(0, 8-len(nc))) + nc
	got := []byte(strings.ToLower(c.Response))
	for _, s := range d.Verifier.Secrets {
		password, err := d.Verifier.Format.Password(s, c.Username)
		if err != nil {
			return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, err)
		}
		ha1 := hexHash(newHash, c.Username, ":", d.Realm, ":", password)
		want := hexHash(newHash, ha1, ":", c.Nonce, ":", nc, ":", c.Cnonce, ":", c.QOP, ":", ha2)
		if subtle.ConstantTimeCompare([]byte(want), got) == 1 {
			if nonceErr != nil {
				return nil, fmt.Errorf("digest: %w", nonceErr)
			}
			return &Identity{
				Authenticator: NameDigest,
				User:          userPart(user),
				AOR:           user,
				ExpiresAt:     expiry,
			}, nil
		}
	}
	return nil, fmt.Errorf("digest: response: %w: %w", ErrInvalidCredentials, chain.ErrBadSignature)
}

// userPart is the user of "user@domain", or s itself.
func userPart(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	return s
}

func hexHash(newHash func() hash.Hash, parts ...string) string {
	h := newHash()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

var _ Authenticator = (*Digest)(nil)
