package chain

import (
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The mint writes the token golang-jwt used to write, byte for byte, without
// its costs: the header segment is encoded once per key, the claims are
// appended by hand into a pooled buffer instead of going through reflection
// and MarshalJSON methods, every segment is base64url-appended into the same
// buffer, and an Ed25519 key (or any Ed25519 crypto.Signer) signs that
// buffer directly.

// mintScratch is the pooled working memory of one mint.
type mintScratch struct {
	claims []byte   // the claims JSON
	tok    []byte   // the token being built
	keys   []string // the sorted keys of SIPGrant.Headers
}

// maxPooledMint bounds the buffers a mint returns to the pool, so that one
// huge token does not pin its memory for ever.
const maxPooledMint = 16 << 10

var mintPool = sync.Pool{New: func() any {
	return &mintScratch{claims: make([]byte, 0, 512), tok: make([]byte, 0, 1024)}
}}

func (s *mintScratch) release() {
	if cap(s.claims) > maxPooledMint || cap(s.tok) > maxPooledMint || cap(s.keys) > 256 {
		return
	}
	clear(s.keys) // drop the references to the caller's strings
	s.claims, s.tok, s.keys = s.claims[:0], s.tok[:0], s.keys[:0]
	mintPool.Put(s)
}

// mintEdgeToken is MintEdgeToken once the key and claims passed its checks.
func mintEdgeToken(key *SigningKey, method jwt.SigningMethod, claims *EdgeClaims) (string, error) {
	s := mintPool.Get().(*mintScratch)
	defer s.release()
	s.claims = appendEdgeClaims(s.claims[:0], claims, &s.keys)
	hdr := mintHeader(key.Alg, key.ID)
	s.tok = slices.Grow(s.tok[:0], len(hdr)+1+b64.EncodedLen(len(s.claims))+1+b64.EncodedLen(ed25519.SignatureSize))
	s.tok = append(s.tok, hdr...)
	s.tok = append(s.tok, '.')
	s.tok = b64.AppendEncode(s.tok, s.claims)
	var sig []byte
	var err error
	if priv, ok := key.Private.(ed25519.PrivateKey); ok && key.Alg == AlgEdDSA && len(priv) == ed25519.PrivateKeySize {
		sig = ed25519.Sign(priv, s.tok)
	} else if key.Alg == AlgEdDSA && keyFitsAlg(key.Private.Public(), AlgEdDSA) {
		// Another Ed25519 crypto.Signer (a faster implementation, a
		// hardware key): it signs the buffer itself, pure Ed25519.
		sig, err = key.Private.Sign(nil, s.tok, crypto.Hash(0))
	} else {
		sig, err = method.Sign(string(s.tok), key.Private)
	}
	if err != nil {
		return "", fmt.Errorf("sign edge token with %s: %w", key.ID, err)
	}
	s.tok = append(s.tok, '.')
	s.tok = b64.AppendEncode(s.tok, sig)
	return string(s.tok), nil
}

// headerKey names an encoded protected header.
type headerKey struct{ alg, kid string }

// mintHeaders caches encoded protected headers, copied on write: a mint
// reads it with one atomic load and no lock. It holds at most
// maxCachedHeaders entries; past that, headers are encoded on every mint.
var mintHeaders struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[headerKey]string]
}

// mintHeader returns the base64url protected header golang-jwt writes for
// alg and kid: its header map marshalled with sorted keys.
func mintHeader(alg, kid string) string {
	k := headerKey{alg, kid}
	if m := mintHeaders.m.Load(); m != nil {
		if h, ok := (*m)[k]; ok {
			return h
		}
	}
	var js []byte
	js = append(js, `{"alg":`...)
	js = appendJSONString(js, alg)
	js = append(js, `,"kid":`...)
	js = appendJSONString(js, kid)
	js = append(js, `,"typ":"JWT"}`...)
	h := b64.EncodeToString(js)

	mintHeaders.mu.Lock()
	defer mintHeaders.mu.Unlock()
	var old map[headerKey]string
	if m := mintHeaders.m.Load(); m != nil {
		old = *m
	}
	if len(old) < maxCachedHeaders {
		next := make(map[headerKey]string, len(old)+1)
		for hk, hv := range old {
			next[hk] = hv
		}
		next[k] = h
		mintHeaders.m.Store(&next)
	}
	return h
}

// appendEdgeClaims appends the JSON encoding/json gives claims: the
// registered claims as golang-jwt marshals them (all omitempty, aud through
// ClaimStrings, dates through NumericDate), then cid and sip. keys is
// scratch for sorting the headers.
func appendEdgeClaims(b []byte, c *EdgeClaims, keys *[]string) []byte {
	b = append(b, '{')
	start := len(b)
	b = appendStringField(b, start, `"iss":`, c.Issuer)
	b = appendStringField(b, start, `"sub":`, c.Subject)
	if len(c.Audience) > 0 {
		b = appendKey(b, start, `"aud":`)
		if len(c.Audience) == 1 && !jwt.MarshalSingleStringAsArray {
			b = appendJSONString(b, c.Audience[0])
		} else {
			b = appendJSONStrings(b, c.Audience)
		}
	}
	b = appendDateField(b, start, `"exp":`, c.ExpiresAt)
	b = appendDateField(b, start, `"nbf":`, c.NotBefore)
	b = appendDateField(b, start, `"iat":`, c.IssuedAt)
	b = appendStringField(b, start, `"jti":`, c.ID)
	b = appendKey(b, start, `"cid":`)
	b = appendJSONString(b, c.CID)
	b = appendKey(b, start, `"sip":`)
	b = appendSIPGrant(b, &c.SIP, keys)
	return append(b, '}')
}

// appendSIPGrant appends g as encoding/json does, following its tags:
// aor omitempty, methods always (null when nil), dial and cidr omitzero
// (omitted only when nil), headers omitempty with sorted keys.
func appendSIPGrant(b []byte, g *SIPGrant, keys *[]string) []byte {
	b = append(b, '{')
	start := len(b)
	b = appendStringField(b, start, `"aor":`, g.AOR)
	b = appendKey(b, start, `"methods":`)
	b = appendJSONStrings(b, g.Methods)
	if g.Dial != nil {
		b = appendKey(b, start, `"dial":`)
		b = append(b, '{')
		dstart := len(b)
		if g.Dial.Allow != nil {
			b = appendKey(b, dstart, `"allow":`)
			b = appendJSONStrings(b, g.Dial.Allow)
		}
		if len(g.Dial.Deny) > 0 {
			b = appendKey(b, dstart, `"deny":`)
			b = appendJSONStrings(b, g.Dial.Deny)
		}
		b = append(b, '}')
	}
	if g.CIDR != nil {
		b = appendKey(b, start, `"cidr":`)
		b = appendJSONStrings(b, g.CIDR)
	}
	if len(g.Headers) > 0 {
		b = appendKey(b, start, `"headers":`)
		ks := (*keys)[:0]
		for k := range g.Headers {
			ks = append(ks, k)
		}
		slices.Sort(ks) // encoding/json orders map keys by strings.Compare
		b = append(b, '{')
		for i, k := range ks {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, g.Headers[k])
		}
		b = append(b, '}')
		*keys = ks
	}
	return append(b, '}')
}

// appendKey appends a member name, after a comma unless it is the first
// member of the object that began at start.
func appendKey(b []byte, start int, key string) []byte {
	if len(b) > start {
		b = append(b, ',')
	}
	return append(b, key...)
}

// appendStringField appends an omitempty string member.
func appendStringField(b []byte, start int, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendJSONString(appendKey(b, start, key), v)
}

// appendDateField appends an omitempty *jwt.NumericDate member. With
// golang-jwt's default TimePrecision of a second its MarshalJSON writes the
// whole Unix seconds (the time truncated to the second, which is what Unix
// already gives); any other precision is left to MarshalJSON itself.
func appendDateField(b []byte, start int, key string, d *jwt.NumericDate) []byte {
	if d == nil {
		return b
	}
	b = appendKey(b, start, key)
	if jwt.TimePrecision == time.Second {
		return strconv.AppendInt(b, d.Unix(), 10)
	}
	js, _ := d.MarshalJSON() // never fails
	return append(b, js...)
}

// appendJSONStrings appends list as encoding/json encodes a []string: null
// when nil, [] when empty.
func appendJSONStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString appends s quoted exactly as encoding/json quotes it. A
// string of printable characters other than " \ < > & and U+2028/U+2029,
// in valid UTF-8, is copied as is; anything else (rare in a token) is left
// to encoding/json, so its escaping — \u003c for <, \ufffd for invalid
// UTF-8, \u2028, short and \u00XX control escapes — holds by construction.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !jsonPlain[c] {
				return appendJSONStringSlow(b, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return appendJSONStringSlow(b, s)
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonPlain marks the ASCII bytes encoding/json copies into a string as
// they are: printable, other than " \ < > &.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

func appendJSONStringSlow(b []byte, s string) []byte {
	js, _ := json.Marshal(s) // a string always marshals
	return append(b, js...)
}
