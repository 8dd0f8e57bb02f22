package chain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionAlgorithms is the allow-list of customer-assertion algorithms.
var AssertionAlgorithms = []string{"HS256", "HS384", "HS512"}

// DefaultAssertionLifetime bounds exp - iat of customer assertions.
const DefaultAssertionLifetime = 5 * time.Minute

// AssertionClaims are the claims of a customer assertion.
type AssertionClaims struct {
	jwt.RegisteredClaims
	// Grants optionally narrows the customer's policy for this visitor.
	Grants *SIPGrant `json:"grants,omitempty"`
	// TTL optionally asks for a shorter edge-token lifetime, in seconds.
	TTL int64 `json:"ttl,omitempty"`
}

// MintAssertion signs claims with secret using alg (HS256 when empty),
// naming the secret in the kid header unless omitKid.
func MintAssertion(secret Secret, claims *AssertionClaims, alg string, omitKid bool) (string, error) {
	if alg == "" {
		alg = "HS256"
	}
	method, ok := jwt.GetSigningMethod(alg).(*jwt.SigningMethodHMAC)
	if !ok {
		return "", fmt.Errorf("assertion alg %q: %w", alg, ErrAlgorithm)
	}
	t := jwt.NewWithClaims(method, claims)
	if !omitKid {
		t.Header["kid"] = secret.ID
	}
	s, err := t.SignedString(secret.Value)
	if err != nil {
		return "", fmt.Errorf("sign assertion with %s: %w", secret.ID, err)
	}
	return s, nil
}

// Assertion is a verified customer assertion.
type Assertion struct {
	Customer  string
	SecretID  string
	Subject   string
	JTI       string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Grants    *SIPGrant
	TTL       time.Duration
}

// AssertionVerifier checks customer assertions against a Keyring. It does
// not remember jti values: the caller enforces once-only use.
type AssertionVerifier struct {
	Keys Keyring
	// Audience is the issuer URL the assertion must name in aud.
	Audience string
	// MaxLifetime bounds exp - iat; DefaultAssertionLifetime when zero.
	MaxLifetime time.Duration
	// Leeway tolerated on exp, nbf and iat.
	Leeway time.Duration
	// MaxSize bounds the token length; DefaultMaxTokenSize when zero.
	MaxSize int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verify checks an assertion in one pass: size; a compact JWS of exactly
// three strict base64url segments (no line breaks, which encoding/base64
// would skip); a header without "crit" whose alg is one
// of AssertionAlgorithms (HS256/384/512); then the secret found by kid (and
// owned by the iss customer, valid at iat) or, without kid, each of the iss
// customer's secrets valid at iat, the HMAC compared in constant time; and
// only once the MAC holds: exp (required), aud, nbf, iat, lifetime, jti,
// sub, ttl and the grants.
//
// The claims are read in one pass (see assertionWire.decode): each claim at
// most once, names matched exactly; dates must be JSON numbers (fractions
// allowed), never strings.
func (v *AssertionVerifier) Verify(token string) (*Assertion, error) {
	dot1, dot2, err := splitCompact(token, v.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	h, cached := assertionHeaders.get(token[:dot1])
	if !cached {
		if h, err = decodeAssertionHeader(token[:dot1]); err != nil {
			return nil, err
		}
	}
	alg, ok := hmacAlg(h.alg)
	if !ok {
		return nil, fmt.Errorf("assertion alg %q: %w", h.alg, ErrAlgorithm)
	}

	sc := assertionScratchPool.Get().(*assertionScratch)
	defer sc.release()
	sc.tok = append(sc.tok[:0], token...)
	if sc.payload, err = b64Strict.AppendDecode(sc.payload[:0], sc.tok[dot1+1:dot2]); err != nil {
		return nil, fmt.Errorf("assertion claims encoding: %w", ErrMalformed)
	}
	w := &sc.wire
	if err := w.decode(sc.payload); err != nil {
		return nil, fmt.Errorf("assertion claims JSON: %w: %w", ErrMalformed, err)
	}
	if sc.sig, err = b64Strict.AppendDecode(sc.sig[:0], sc.tok[dot2+1:]); err != nil {
		return nil, fmt.Errorf("assertion signature encoding: %w", ErrMalformed)
	}
	if w.Iss == "" {
		return nil, fmt.Errorf("assertion: iss: %w", ErrMissingClaim)
	}
	if !w.Iat.set {
		return nil, fmt.Errorf("assertion: iat: %w", ErrMissingClaim)
	}
	iat := w.Iat.time()
	secretID, err := v.checkMAC(sc, h, alg, w.Iss, iat, sc.tok[:dot2])
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	if err := v.checkClaims(w, iat); err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	a := &Assertion{
		Customer:  w.Iss,
		SecretID:  secretID,
		Subject:   w.Sub,
		JTI:       w.Jti,
		IssuedAt:  iat,
		ExpiresAt: w.Exp.time(),
		Grants:    w.Grants,
		TTL:       time.Duration(w.TTL) * time.Second,
	}
	if !cached {
		assertionHeaders.put(token[:dot1], h, maxCachedAssertionHeaders)
	}
	return a, nil
}

// checkMAC selects the secret as the kid (or its absence) says and checks
// the MAC over input with it, naming the secret that verified.
func (v *AssertionVerifier) checkMAC(sc *assertionScratch, h assertionHeader, alg int, iss string, iat time.Time, input []byte) (string, error) {
	if h.kid != "" {
		s, ok := v.Keys.SecretByID(h.kid)
		if !ok || s.Customer != iss {
			return "", fmt.Errorf("secret %q of %q: %w", h.kid, iss, ErrUnknownKey)
		}
		if !s.ValidAt(iat) {
			return "", fmt.Errorf("secret %q not valid at iat: %w", h.kid, ErrUnknownKey)
		}
		if !sc.macEqual(alg, s.Value, input) {
			return "", ErrBadSignature
		}
		return s.ID, nil
	}
	tried := false
	for _, s := range v.Keys.SecretsOf(iss) {
		if !s.ValidAt(iat) {
			continue
		}
		tried = true
		if sc.macEqual(alg, s.Value, input) {
			return s.ID, nil
		}
	}
	if !tried {
		return "", fmt.Errorf("no secret of %q valid at iat: %w", iss, ErrUnknownKey)
	}
	return "", ErrBadSignature
}

// checkClaims checks the claims of an assertion whose MAC holds, in the
// order that decides which error a token with several faults gets: missing
// exp or aud, expiry, nbf and iat, audience, jti, sub, lifetime, ttl, grants.
func (v *AssertionVerifier) checkClaims(w *assertionWire, iat time.Time) error {
	lifetime := v.MaxLifetime
	if lifetime == 0 {
		lifetime = DefaultAssertionLifetime
	}
	now := nowFunc(v.Now)()
	if !w.Exp.set {
		return fmt.Errorf("exp: %w", ErrMissingClaim)
	}
	if len(w.Aud) == 0 || len(w.Aud) == 1 && w.Aud[0] == "" {
		return fmt.Errorf("aud: %w", ErrMissingClaim)
	}
	exp := w.Exp.time()
	switch {
	case !now.Before(exp.Add(v.Leeway)):
		return fmt.Errorf("expired at %d: %w", exp.Unix(), ErrExpired)
	case w.Nbf.set && now.Before(w.Nbf.time().Add(-v.Leeway)):
		return fmt.Errorf("nbf %d: %w", w.Nbf.time().Unix(), ErrNotYetValid)
	case now.Before(iat.Add(-v.Leeway)):
		return fmt.Errorf("iat %d: %w", iat.Unix(), ErrNotYetValid)
	case !slices.Contains(w.Aud, v.Audience):
		return fmt.Errorf("aud %q: %w", []string(w.Aud), ErrAudience)
	case w.Jti == "":
		return fmt.Errorf("jti: %w", ErrMissingClaim)
	case w.Sub == "":
		return fmt.Errorf("sub: %w", ErrMissingClaim)
	}
	if life := exp.Sub(iat); life > lifetime {
		return fmt.Errorf("lives %s, more than %s: %w", life, lifetime, ErrLifetime)
	}
	if w.TTL < 0 || w.TTL > math.MaxInt64/int64(time.Second) {
		return fmt.Errorf("ttl %d: %w", w.TTL, ErrMalformed)
	}
	if w.Grants != nil {
		if err := w.Grants.Validate(); err != nil {
			return fmt.Errorf("grants: %w", err)
		}
	}
	return nil
}

// hmacAlgs are the HMAC algorithms an assertion may use, with their hashes.
var hmacAlgs = [...]struct {
	name string
	hash func() hash.Hash
}{{"HS256", sha256.New}, {"HS384", sha512.New384}, {"HS512", sha512.New}}

// hmacAlg returns the index in hmacAlgs of an allowed assertion algorithm,
// false for any other (none, EdDSA, RS256, an HMAC taken off
// AssertionAlgorithms, ...).
func hmacAlg(alg string) (int, bool) {
	if !slices.Contains(AssertionAlgorithms, alg) {
		return 0, false
	}
	for i, a := range hmacAlgs {
		if a.name == alg {
			return i, true
		}
	}
	return 0, false
}

// maxMACPools bounds the keyed HMAC pools of one algorithm.
const maxMACPools = 256

// macs pools keyed HMAC states by algorithm and secret value: hmac.New
// hashes two blocks and allocates five times, resetting a used state does
// neither. Only secrets a Keyring handed out, after their validity was
// checked, get a pool, so the map grows with the secrets, not with the
// tokens; it starts again empty when full.
var macs macPools

type macPools struct {
	mu sync.RWMutex
	m  [len(hmacAlgs)]map[string]*sync.Pool
}

func (c *macPools) pool(alg int, key []byte) *sync.Pool {
	c.mu.RLock()
	p := c.m[alg][string(key)]
	c.mu.RUnlock()
	if p != nil {
		return p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p = c.m[alg][string(key)]; p != nil {
		return p
	}
	if c.m[alg] == nil || len(c.m[alg]) >= maxMACPools {
		c.m[alg] = make(map[string]*sync.Pool)
	}
	k, newHash := slices.Clone(key), hmacAlgs[alg].hash
	p = &sync.Pool{New: func() any { return hmac.New(newHash, k) }}
	c.m[alg][string(k)] = p
	return p
}

// assertionHeader is what Verify reads of an assertion's JWS header.
type assertionHeader struct{ alg, kid string }

// decodeAssertionHeader decodes a header segment. Member names match
// exactly (not case-insensitively as struct decoding would); kid, when
// present, must be a string; crit is refused, no extension being understood.
// An alg that is absent or not a string is ErrAlgorithm, like one not allowed.
func decodeAssertionHeader(seg string) (assertionHeader, error) {
	raw, err := b64Strict.DecodeString(seg)
	if err != nil {
		return assertionHeader{}, fmt.Errorf("assertion header encoding: %w", ErrMalformed)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return assertionHeader{}, fmt.Errorf("assertion header JSON: %w", ErrMalformed)
	}
	if _, ok := m["crit"]; ok {
		return assertionHeader{}, fmt.Errorf("assertion: crit header not understood: %w", ErrMalformed)
	}
	var h assertionHeader
	if kid, ok := m["kid"]; ok {
		if err := json.Unmarshal(kid, &h.kid); err != nil || kid[0] != '"' {
			return assertionHeader{}, fmt.Errorf("assertion header kid is not a string: %w", ErrMalformed)
		}
	}
	if alg, ok := m["alg"]; !ok || alg[0] != '"' || json.Unmarshal(alg, &h.alg) != nil {
		return assertionHeader{}, fmt.Errorf("assertion header alg missing or not a string: %w", ErrAlgorithm)
	}
	return h, nil
}

// maxCachedAssertionHeaders bounds the assertion header cache.
const maxCachedAssertionHeaders = 256

// assertionHeaders remembers the decoded headers of assertions that
// verified, by their encoded segment. It is shared by all verifiers (the
// issuer makes one per request): a decoded header depends on nothing but
// its segment, and a customer backend sends the same header every time.
// Only the decoding is skipped; the alg is still checked against the
// allow-list and the kid still looked up on every call.
var assertionHeaders headerCache[assertionHeader]

// assertionWire is AssertionClaims as they travel, with plain types, filled
// by decode (which names the members; there are no struct tags, since
// encoding/json never decodes into it).
type assertionWire struct {
	Iss, Sub, Jti string
	Aud           audience
	Exp, Nbf, Iat seconds
	Grants        *SIPGrant
	TTL           int64
}

// assertionClaimNames are the members assertionWire.decode reads.
var assertionClaimNames = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "grants", "ttl"}

// decode reads the claims object b into w in one pass, as encoding/json
// would into the struct (null leaves a member as it was; unknown members
// are skipped), except that names match exactly and each claim may appear
// once: a claim named twice, or a member whose name differs from a claim's
// only in case, is refused rather than merged or taken for it (RFC 7519 §4:
// claim names are case-sensitive, and a parser either refuses duplicates or
// keeps the last; encoding/json merged two "grants" objects). b is checked
// to be valid JSON first, so the walk below only has to find where each
// value ends.
func (w *assertionWire) decode(b []byte) error {
	if !json.Valid(b) {
		return errors.New("not valid JSON")
	}
	b = skipJSONSpace(b)
	if string(b) == "null" {
		return nil
	}
	if b[0] != '{' {
		return errors.New("claims are not an object")
	}
	b = skipJSONSpace(b[1:])
	var seen uint16 // the claims met so far, a bit each
	for len(b) > 0 && b[0] != '}' {
		end := jsonStringEnd(b)
		name := b[1:end]
		if slices.Contains(name, '\\') {
			u, err := unquoteJSON(b[:end+1])
			if err != nil {
				return err
			}
			name = []byte(u)
		}
		b = skipJSONSpace(b[end+1:]) // at ':'
		b = skipJSONSpace(b[1:])
		n := jsonValueEnd(b)
		if k := slices.Index(assertionClaimNames[:], string(name)); k >= 0 {
			if seen&(1<<k) != 0 {
				return fmt.Errorf("claim %q named twice", name)
			}
			seen |= 1 << k
		}
		if err := w.decodeMember(name, b[:n]); err != nil {
			return fmt.Errorf("claim %q: %w", name, err)
		}
		b = skipJSONSpace(b[n:])
		if len(b) > 0 && b[0] == ',' {
			b = skipJSONSpace(b[1:])
		}
	}
	return nil
}

// decodeMember decodes one member's value v (valid JSON) into w.
func (w *assertionWire) decodeMember(name, v []byte) error {
	null := string(v) == "null"
	switch string(name) {
	case "iss":
		return decodeJSONString(v, &w.Iss)
	case "sub":
		return decodeJSONString(v, &w.Sub)
	case "jti":
		return decodeJSONString(v, &w.Jti)
	case "aud":
		return w.Aud.UnmarshalJSON(v)
	case "exp":
		return w.Exp.UnmarshalJSON(v)
	case "nbf":
		return w.Nbf.UnmarshalJSON(v)
	case "iat":
		return w.Iat.UnmarshalJSON(v)
	case "ttl":
		if null {
			return nil
		}
		t, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return errNotNumber
		}
		w.TTL = t
		return nil
	case "grants":
		if null {
			w.Grants = nil
			return nil
		}
		g := new(SIPGrant)
		if err := json.Unmarshal(v, g); err != nil {
			return err
		}
		w.Grants = g
		return nil
	}
	for _, c := range assertionClaimNames {
		if bytes.EqualFold(name, []byte(c)) {
			return fmt.Errorf("differs from %q only in case", c)
		}
	}
	return nil
}

// decodeJSONString sets *s to the JSON string v; null leaves it as it is.
func decodeJSONString(v []byte, s *string) error {
	if string(v) == "null" {
		return nil
	}
	u, err := unquoteJSON(v)
	if err != nil {
		return err
	}
	*s = u
	return nil
}

// jsonValueEnd returns the length of the JSON value b starts with; b is
// valid JSON.
func jsonValueEnd(b []byte) int {
	switch b[0] {
	case '"':
		return jsonStringEnd(b) + 1
	case '{', '[':
		depth := 0
		for i := 0; i < len(b); i++ {
			switch b[i] {
			case '"':
				i += jsonStringEnd(b[i:])
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	i := 0
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// errNotNumber and errNotString are reported by the wire decoders; Verify
// turns any decoding error into ErrMalformed.
var (
	errNotNumber = errors.New("not a JSON number")
	errNotString = errors.New("not a JSON string")
)

// seconds is a NumericDate as it travels: a JSON number of seconds since
// the epoch, fractions allowed. null leaves it unset; anything else, a
// string included, is an error.
type seconds struct {
	v   float64
	set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *seconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = seconds{}
		return nil
	}
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errNotNumber
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*s = seconds{v: f, set: true}
	return nil
}

// time converts as golang-jwt's NumericDate does: whole and fractional
// seconds, truncated to the second.
func (s seconds) time() time.Time {
	sec, frac := math.Modf(s.v)
	return time.Unix(int64(sec), int64(frac*1e9)).Truncate(time.Second)
}

// audience is the aud claim: a string or an array of strings, as
// jwt.ClaimStrings decodes it (null keeps what was there, an empty array
// empties it) without going through an interface value.
type audience []string

// UnmarshalJSON implements json.Unmarshaler.
func (a *audience) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case b[0] == '"':
		s, err := unquoteJSON(b)
		if err != nil {
			return err
		}
		*a = append((*a)[:0], s)
		return nil
	case b[0] == '[':
		*a = (*a)[:0]
		rest := skipJSONSpace(b[1:])
		if string(rest) == "]" {
			return nil
		}
		for {
			end := jsonStringEnd(rest)
			if end < 0 {
				return errNotString
			}
			s, err := unquoteJSON(rest[:end+1])
			if err != nil {
				return err
			}
			*a = append(*a, s)
			rest = skipJSONSpace(rest[end+1:])
			switch {
			case len(rest) == 1 && rest[0] == ']':
				return nil
			case len(rest) == 0 || rest[0] != ',':
				return errNotString
			}
			rest = skipJSONSpace(rest[1:])
		}
	}
	return errNotString
}

// skipJSONSpace drops leading JSON white space.
func skipJSONSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// jsonStringEnd returns the index of the quote closing the JSON string b
// starts with, or -1 when b does not start with a complete string.
func jsonStringEnd(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		return -1
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unquoteJSON decodes a JSON string value; b is valid JSON, as encoding/json
// hands it to an Unmarshaler. Plain UTF-8 without escapes is taken as is.
func unquoteJSON(b []byte) (string, error) {
	if len(b) < 2 || b[0] != '"' {
		return "", errNotString
	}
	if inner := b[1 : len(b)-1]; !slices.Contains(inner, '\\') && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// assertionScratch holds the byte copies and decoded claims a verification
// works on, pooled so that a call allocates little beyond what it returns.
type assertionScratch struct {
	tok, sig, payload, mac []byte
	wire                   assertionWire
}

var assertionScratchPool = sync.Pool{New: func() any { return new(assertionScratch) }}

// maxPooledScratch keeps buffers grown by an unusually large MaxSize out
// of the pool.
const maxPooledScratch = 64 << 10

// release clears what the returned Assertion may share (the grants) or
// must not outlive the call, and pools the buffers again.
func (sc *assertionScratch) release() {
	aud := sc.wire.Aud[:0]
	sc.wire = assertionWire{Aud: aud}
	clear(sc.mac)
	if cap(sc.tok) > maxPooledScratch {
		return
	}
	assertionScratchPool.Put(sc)
}

// macEqual reports in constant time whether sc.sig is the HMAC of input
// under key with hmacAlgs[alg].
func (sc *assertionScratch) macEqual(alg int, key, input []byte) bool {
	p := macs.pool(alg, key)
	m := p.Get().(hash.Hash)
	m.Write(input)
	sc.mac = m.Sum(sc.mac[:0])
	m.Reset()
	p.Put(m)
	return hmac.Equal(sc.mac, sc.sig)
}
