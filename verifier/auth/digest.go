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
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
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

// ErrURIMismatch means the uri of Digest credentials does not name the
// resource of the request they came with (RFC 3261 §22.4): an answer
// computed for one request replayed on another.
var ErrURIMismatch = errors.New("digest uri does not match the Request-URI")

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
	// HA1Cache bounds the number of HA1 values remembered (see ha1Cache);
	// DefaultHA1CacheSize when zero, none when negative.
	HA1Cache int

	macs sync.Pool // HMAC-SHA256 under NonceKey, reset before use
	ha1  ha1Cache
}

// DefaultHA1CacheSize bounds the HA1 cache of a Digest made with
// HA1Cache 0.
const DefaultHA1CacheSize = 10_000

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

// Challenges returns the header values of a Digest challenge: MD5 first
// (many SIP clients, SIPp among them, answer only the first challenge and
// know only MD5), then SHA-256, with stale=true when stale.
func (d *Digest) Challenges(stale bool) []string {
	n := d.Nonce()
	var b strings.Builder
	out := make([]string, 0, 2)
	for _, alg := range [...]string{AlgMD5, AlgSHA256} {
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

// nonceHMAC is a pooled HMAC under NonceKey with a reusable buffer.
type nonceHMAC struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func (d *Digest) nonceMAC(data, dst []byte) []byte {
	m, _ := d.macs.Get().(*nonceHMAC)
	if m == nil {
		m = &nonceHMAC{h: hmac.New(sha256.New, d.NonceKey)}
	}
	m.h.Reset()
	m.buf = append(append(m.buf[:0], data...), d.Realm...)
	m.h.Write(m.buf)
	dst = append(dst, m.h.Sum(m.sum[:0])[:16]...)
	d.macs.Put(m)
	return dst
}

// CheckNonce reports whether nonce was made with NonceKey (ErrNonce if
// not) and is still fresh (ErrStaleNonce if not).
func (d *Digest) CheckNonce(nonce string) error {
	if len(nonce) != nonceLen {
		return ErrNonce
	}
	var raw [nonceRaw]byte
	var enc [nonceLen]byte
	copy(enc[:], nonce)
	if n, err := base64.RawURLEncoding.Decode(raw[:], enc[:]); err != nil || n != nonceRaw {
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

// DigestCredentials are the parameters of a Digest Authorization header.
type DigestCredentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, Cnonce, QOP, Opaque string
	// NC is the nonce count as sent (8 hex digits).
	NC string
}

// ParseDigest parses the parameters of Digest credentials (the header
// value after "Digest "): comma-separated name=value pairs, values quoted
// (with backslash escapes) or bare tokens. Unknown parameters are
// ignored; a parameter given twice, an unterminated quote or garbage is
// an error. It checks the parameters this edge needs are present.
func ParseDigest(params string) (*DigestCredentials, error) {
	if len(params) > 4096 {
		return nil, fmt.Errorf("digest credentials too long: %w", chain.ErrTooLarge)
	}
	c := new(DigestCredentials)
	seen := 0
	s := params
	for {
		s = strings.TrimLeft(s, " \t\r\n,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("digest credentials: parameter without value: %w", chain.ErrMalformed)
		}
		name := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var value string
		if strings.HasPrefix(s, `"`) {
			if end := strings.IndexByte(s[1:], '"'); end >= 0 && strings.IndexByte(s[1:1+end], '\\') < 0 {
				value, s = s[1:1+end], s[end+2:] // no escapes: no copy
				goto got
			}
			var b strings.Builder
			i, closed := 1, false
			for ; i < len(s); i++ {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if ch == '"' {
					closed = true
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return nil, fmt.Errorf("digest credentials: unterminated quote: %w", chain.ErrMalformed)
			}
			value, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
		}
	got:
		s = strings.TrimLeft(s, " \t")
		if s != "" && s[0] != ',' {
			return nil, fmt.Errorf("digest credentials: junk after %s: %w", name, chain.ErrMalformed)
		}
		var dst *string
		bit := 0
		switch strings.ToLower(name) {
		case "username":
			dst, bit = &c.Username, 1
		case "realm":
			dst, bit = &c.Realm, 2
		case "nonce":
			dst, bit = &c.Nonce, 4
		case "uri":
			dst, bit = &c.URI, 8
		case "response":
			dst, bit = &c.Response, 16
		case "algorithm":
			dst, bit = &c.Algorithm, 32
		case "cnonce":
			dst, bit = &c.Cnonce, 64
		case "qop":
			dst, bit = &c.QOP, 128
		case "nc":
			dst, bit = &c.NC, 256
		case "opaque":
			dst, bit = &c.Opaque, 512
		default:
			continue
		}
		if seen&bit != 0 {
			return nil, fmt.Errorf("digest credentials: %s twice: %w", name, chain.ErrMalformed)
		}
		seen |= bit
		*dst = value
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return nil, fmt.Errorf("digest credentials: username, nonce, uri, response: %w", chain.ErrMissingClaim)
	}
	return c, nil
}

// Authenticate implements Authenticator.
func (d *Digest) Authenticate(_ context.Context, req *sip.Request, _ netip.AddrPort) (*Identity, error) {
	scheme, value, ok := Credentials(req)
	if !ok || scheme != SchemeDigest {
		return nil, errDigestNone
	}
	return d.Verify(string(req.Method), &req.Recipient, value)
}

// Verify checks the Digest credentials params for a request of method
// whose Request-URI is ruri: the credentials' uri must name the same
// resource (see SameResource).
func (d *Digest) Verify(method string, ruri *sip.Uri, params string) (*Identity, error) {
	c, err := ParseDigest(params)
	if err != nil {
		return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, err)
	}
	if c.Realm != d.Realm {
		return nil, fmt.Errorf("digest: realm: %w: %w", ErrInvalidCredentials, chain.ErrAudience)
	}
	var alg digestAlg
	switch {
	case c.Algorithm == "" || strings.EqualFold(c.Algorithm, AlgMD5):
		alg = algMD5
	case strings.EqualFold(c.Algorithm, AlgSHA256):
		alg = algSHA256
	default:
		return nil, fmt.Errorf("digest: algorithm: %w: %w", ErrInvalidCredentials, chain.ErrAlgorithm)
	}
	if c.QOP != "auth" || c.Cnonce == "" || !validNC(c.NC) {
		return nil, fmt.Errorf("digest: qop=auth, cnonce and nc required: %w: %w", ErrInvalidCredentials, chain.ErrMalformed)
	}
	if !SameResource(c.URI, ruri) {
		return nil, fmt.Errorf("digest: uri: %w: %w", ErrInvalidCredentials, ErrURIMismatch)
	}
	sc := scratchPool.Get().(*digestScratch)
	defer scratchPool.Put(sc)
	got := sc.got[:alg.size()]
	if len(c.Response) != 2*alg.size() {
		return nil, fmt.Errorf("digest: response: %w: %w", ErrInvalidCredentials, chain.ErrMalformed)
	}
	if !decodeHex(got, c.Response) {
		return nil, fmt.Errorf("digest: response: %w: %w", ErrInvalidCredentials, chain.ErrMalformed)
	}
	nonceErr := d.CheckNonce(c.Nonce)
	if errors.Is(nonceErr, ErrNonce) {
		return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, nonceErr)
	}
	user, expiry, err := d.Verifier.CheckUsername(c.Username)
	if err != nil {
		return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, err)
	}
	ha2hex := alg.hexSum(sc, sc.ha2[:0], method, ":", c.URI)
	ok := false
	// A cached HA1 saves the password HMAC; it is only a hint: on a
	// mismatch every secret is tried as if there were no cache.
	key := ha1Key{alg: alg, username: c.Username}
	if e, hit := d.ha1.get(key); hit && e.secret < len(d.Verifier.Secrets) && subtle.ConstantTimeCompare(e.secretValue, d.Verifier.Secrets[e.secret]) == 1 {
		ok = d.check(sc, alg, e.ha1[:2*alg.size()], c, ha2hex, got)
	}
	for i := 0; !ok && i < len(d.Verifier.Secrets); i++ {
		password, err := d.Verifier.Format.Password(d.Verifier.Secrets[i], c.Username)
		if err != nil {
			return nil, fmt.Errorf("digest: %w: %w", ErrInvalidCredentials, err)
		}
		ha1hex := alg.hexSum(sc, sc.ha1[:0], c.Username, ":", d.Realm, ":", password)
		if d.check(sc, alg, ha1hex, c, ha2hex, got) {
			ok = true
			if d.HA1Cache >= 0 {
				e := ha1Entry{ha1: sc.ha1, secret: i, secretValue: d.Verifier.Secrets[i], expires: expiry}
				d.ha1.put(key, e, d.HA1Cache, nowFunc(d.Now)())
			}
		}
	}
	if !ok {
		return nil, fmt.Errorf("digest: response: %w: %w", ErrInvalidCredentials, chain.ErrBadSignature)
	}
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

// digestScratch holds the buffers of one verification. It is pooled and
// on the heap: arrays of this size in Verify's frame made the stack of
// every request goroutine grow (a copy per request).
type digestScratch struct {
	buf      []byte
	got, sum [sha256.Size]byte
	ha1, ha2 [2 * sha256.Size]byte
}

var scratchPool = sync.Pool{New: func() any { return &digestScratch{buf: make([]byte, 0, 512)} }}

// check reports whether got is the response of credentials c with HA1
// ha1hex and HA2 ha2hex (both hex), in constant time.
func (d *Digest) check(sc *digestScratch, alg digestAlg, ha1hex []byte, c *DigestCredentials, ha2hex, got []byte) bool {
	b := append(sc.buf[:0], ha1hex...)
	for _, p := range [...]string{":", c.Nonce, ":", c.NC, ":", c.Cnonce, ":", c.QOP, ":"} {
		b = append(b, p...)
	}
	b = append(b, ha2hex...)
	sc.buf = b[:0]
	want := alg.sum(sc.sum[:0], b)
	return subtle.ConstantTimeCompare(want, got) == 1
}

// digestAlg is a Digest hash: MD5 or SHA-256.
type digestAlg uint8

const (
	algMD5 digestAlg = iota
	algSHA256
)

func (a digestAlg) size() int {
	if a == algMD5 {
		return md5.Size
	}
	return sha256.Size
}

// sum appends the hash of data to dst.
func (a digestAlg) sum(dst, data []byte) []byte {
	if a == algMD5 {
		s := md5.Sum(data)
		return append(dst, s[:]...)
	}
	s := sha256.Sum256(data)
	return append(dst, s[:]...)
}

// hexSum appends the lower-case hex hash of the concatenated parts to dst,
// using sc's buffers.
func (a digestAlg) hexSum(sc *digestScratch, dst []byte, parts ...string) []byte {
	b := sc.buf[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	sc.buf = b[:0]
	sum := a.sum(sc.sum[:0], b)
	n := len(dst)
	dst = append(dst, make([]byte, 2*a.size())...)
	hex.Encode(dst[n:], sum)
	return dst
}

// decodeHex decodes the hex string s (either case) into dst, which must
// be half its length.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// SameResource reports whether uri, the uri parameter of Digest
// credentials, names the same resource as the Request-URI ruri (RFC 3261
// §22.4). Clients copy the Request-URI verbatim, but a proxy on the way
// may re-serialise it, so the check is lenient about form and strict
// about meaning: uri must parse as a SIP URI with the same scheme, user
// and port, and the same host up to case. Parameters and headers are not
// compared. A nil ruri matches nothing.
func SameResource(uri string, ruri *sip.Uri) bool {
	if ruri == nil || len(uri) > 1024 {
		return false
	}
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, ruri.Scheme) && u.User == ruri.User &&
		strings.EqualFold(u.Host, ruri.Host) && u.Port == ruri.Port
}

// ha1Cache remembers, per username and algorithm, the HA1 that verified
// last and which secret it came from, until the credential expires. It
// holds at most its size entries; when full, expired or arbitrary
// entries are dropped. Only HA1 values of answers that verified are put
// in, so failed attempts cannot evict good entries.
type ha1Cache struct {
	mu sync.Mutex
	m  map[ha1Key]ha1Entry
}

type ha1Key struct {
	alg      digestAlg
	username string
}

type ha1Entry struct {
	ha1 [2 * sha256.Size]byte // hex
	// secret is the index in Verifier.Secrets of the secret it came from,
	// secretValue that secret: the entry is used only while the same
	// secret is still configured at the same place.
	secret      int
	secretValue []byte
	expires     time.Time
}

func (c *ha1Cache) get(k ha1Key) (ha1Entry, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	return e, ok
}

func (c *ha1Cache) put(k ha1Key, e ha1Entry, size int, now time.Time) {
	if size == 0 {
		size = DefaultHA1CacheSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[ha1Key]ha1Entry)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= size {
		evictSample(c.m, func(v ha1Entry) bool { return !now.Before(v.expires) })
	}
	c.m[k] = e
}

// len is the number of cached HA1 values.
func (c *ha1Cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// validNC reports whether nc is 8 hex digits, not all zero.
func validNC(nc string) bool {
	if len(nc) != 8 || nc == "00000000" {
		return false
	}
	for i := 0; i < len(nc); i++ {
		c := nc[i] | 0x20
		if !('0' <= nc[i] && nc[i] <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// userPart is the user of "user@domain", or s itself.
func userPart(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	return s
}

var _ Authenticator = (*Digest)(nil)
