package chain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// This file checks the one-pass AssertionVerifier.Verify against the
// golang-jwt based implementation it replaced (referenceVerify below, kept
// verbatim apart from its name and receiver).
//
// Intentional divergences, where the new verifier refuses what the old one
// could accept (the differential checks only that the new one refuses):
//   - a header with a "crit" member: no extension is understood (RFC 7515
//     §4.1.11 asks for refusal); golang-jwt ignored it;
//   - a header whose kid is present but not a JSON string: golang-jwt read it
//     as no kid and tried every secret of the customer;
//   - exp, iat or nbf given as a JSON string: golang-jwt's NumericDate
//     decodes through json.Number, which takes numeric strings ("1767225600");
//     a NumericDate is a number (RFC 7519 §2);
//   - a claim named in another case ("EXP", "Aud", "ſub"): encoding/json
//     matched struct fields case-insensitively; claim names are
//     case-sensitive (RFC 7519 §4), and rather than ignore such a member,
//     which could leave a second spelling of a claim unread, the verifier
//     refuses the token;
//   - a claim named twice: RFC 7519 §4 lets a parser refuse duplicates or
//     keep the last; encoding/json merged two "grants" objects into one;
//   - a ttl too large for a time.Duration: golang-jwt's caller wrapped it;
//   - a CR or LF anywhere in the token: encoding/base64 skips them even in
//     strict mode, so the old verifier accepted many spellings of a token.
//
// Error kinds may differ where a token has several faults and the checks
// run in another order (the alg is now checked before the claims are
// decoded); accept/reject and the accepted Assertion always agree.

// referenceVerify is the golang-jwt based Verify this package had before
// the one-pass verifier.
func referenceVerify(v *AssertionVerifier, token string) (*Assertion, error) {
	max := v.MaxSize
	if max == 0 {
		max = DefaultMaxTokenSize
	}
	if len(token) > max {
		return nil, fmt.Errorf("assertion of %d bytes: %w", len(token), ErrTooLarge)
	}
	lifetime := v.MaxLifetime
	if lifetime == 0 {
		lifetime = DefaultAssertionLifetime
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(AssertionAlgorithms),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.Leeway),
		jwt.WithTimeFunc(nowFunc(v.Now)),
		jwt.WithStrictDecoding(),
	)
	claims := new(AssertionClaims)
	var used []Secret
	var method jwt.SigningMethod
	_, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		method = t.Method
		if claims.Issuer == "" {
			return nil, fmt.Errorf("iss: %w", ErrMissingClaim)
		}
		if claims.IssuedAt == nil {
			return nil, fmt.Errorf("iat: %w", ErrMissingClaim)
		}
		iat := claims.IssuedAt.Time
		if kid, _ := t.Header["kid"].(string); kid != "" {
			s, ok := v.Keys.SecretByID(kid)
			if !ok || s.Customer != claims.Issuer {
				return nil, fmt.Errorf("secret %q of %q: %w", kid, claims.Issuer, ErrUnknownKey)
			}
			if !s.ValidAt(iat) {
				return nil, fmt.Errorf("secret %q not valid at iat: %w", kid, ErrUnknownKey)
			}
			used = []Secret{s}
			return s.Value, nil
		}
		var set jwt.VerificationKeySet
		for _, s := range v.Keys.SecretsOf(claims.Issuer) {
			if s.ValidAt(iat) {
				used = append(used, s)
				set.Keys = append(set.Keys, s.Value)
			}
		}
		if len(used) == 0 {
			return nil, fmt.Errorf("no secret of %q valid at iat: %w", claims.Issuer, ErrUnknownKey)
		}
		return set, nil
	})
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", referenceMapJWTError(token, AssertionAlgorithms, err))
	}
	if claims.ID == "" {
		return nil, fmt.Errorf("assertion: jti: %w", ErrMissingClaim)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("assertion: sub: %w", ErrMissingClaim)
	}
	life := claims.ExpiresAt.Sub(claims.IssuedAt.Time)
	if life > lifetime {
		return nil, fmt.Errorf("assertion lives %s, more than %s: %w", life, lifetime, ErrLifetime)
	}
	if claims.TTL < 0 {
		return nil, fmt.Errorf("assertion ttl %d: %w", claims.TTL, ErrMalformed)
	}
	if claims.Grants != nil {
		if err := claims.Grants.Validate(); err != nil {
			return nil, fmt.Errorf("assertion grants: %w", err)
		}
	}
	a := &Assertion{
		Customer:  claims.Issuer,
		Subject:   claims.Subject,
		JTI:       claims.ID,
		IssuedAt:  claims.IssuedAt.Time,
		ExpiresAt: claims.ExpiresAt.Time,
		Grants:    claims.Grants,
		TTL:       time.Duration(claims.TTL) * time.Second,
	}
	a.SecretID = used[0].ID
	if len(used) > 1 {
		dot := strings.LastIndexByte(token, '.')
		sig, _ := b64Strict.DecodeString(token[dot+1:])
		for _, s := range used {
			if method.Verify(token[:dot], sig, s.Value) == nil {
				a.SecretID = s.ID
				break
			}
		}
	}
	return a, nil
}

// referenceMapJWTError is the error mapping referenceVerify used (a copy,
// so that the reference does not depend on production code it no longer
// needs).
func referenceMapJWTError(token string, allowed []string, err error) error {
	for _, ours := range []error{ErrUnknownKey, ErrAlgorithm, ErrLifetime, ErrMissingClaim} {
		if errors.Is(err, ours) {
			return err
		}
	}
	var mapped error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		mapped = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !referenceHeaderAlgAllowed(token, allowed):
		mapped = ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		mapped = ErrBadSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		mapped = ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		mapped = ErrMissingClaim
	case errors.Is(err, jwt.ErrTokenExpired):
		mapped = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		mapped = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		mapped = ErrAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		mapped = ErrIssuer
	default:
		mapped = ErrMalformed
	}
	return fmt.Errorf("%w: %v", mapped, err)
}

func referenceHeaderAlgAllowed(token string, allowed []string) bool {
	t, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	return err == nil && slices.Contains(allowed, t.Method.Alg())
}

// sawString records whether any occurrence of a claim was a JSON string;
// encoding/json calls it for every occurrence, with its own member-name
// matching, so duplicates and case variants are all seen.
type sawString bool

func (s *sawString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*s = true
	}
	return nil
}

// intentionalDivergence names why the new verifier may refuse token where
// the reference accepts it, or returns "" when both must agree.
func intentionalDivergence(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	if raw, err := b64Strict.DecodeString(parts[0]); err == nil {
		var h map[string]json.RawMessage
		if json.Unmarshal(raw, &h) == nil {
			if _, ok := h["crit"]; ok {
				return "crit header"
			}
			if kid, ok := h["kid"]; ok && (len(kid) == 0 || kid[0] != '"') {
				return "kid not a string"
			}
		}
	}
	if raw, err := b64Strict.DecodeString(parts[1]); err == nil {
		var probe struct {
			Exp sawString `json:"exp"`
			Iat sawString `json:"iat"`
			Nbf sawString `json:"nbf"`
		}
		// An error here (not an object, a bad member) changes nothing:
		// the probe keeps what it saw before.
		_ = json.Unmarshal(raw, &probe)
		if probe.Exp || probe.Iat || probe.Nbf {
			return "date as a string"
		}
		names := memberNames(raw)
		for k, name := range names {
			for _, c := range assertionClaimNames {
				if name != c && strings.EqualFold(name, c) {
					return "claim name in another case"
				}
				if name == c && slices.Contains(names[:k], name) {
					return "claim named twice"
				}
			}
		}
		var ttl struct{ TTL json.Number }
		if json.Unmarshal(raw, &ttl) == nil {
			if n, err := ttl.TTL.Int64(); err == nil && n > math.MaxInt64/int64(time.Second) {
				return "ttl beyond a time.Duration"
			}
		}
	}
	if strings.ContainsAny(token, "\r\n") {
		return "line break in a segment"
	}
	return ""
}

// memberNames lists the member names of the JSON object raw in order,
// duplicates included; nil when raw is not an object.
func memberNames(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var names []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return names
		}
		name, _ := t.(string)
		names = append(names, name)
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return names
		}
	}
	return names
}

// errKind is the first of this package's errors that err matches.
func errKind(err error) error {
	for _, k := range []error{ErrTooLarge, ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrBadSignature, ErrMissingClaim,
		ErrExpired, ErrNotYetValid, ErrAudience, ErrLifetime, ErrIssuer, ErrForbidden} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

// agreeWithReference verifies token with v and with referenceVerify and
// fails t unless they agree (or the token is an intentional divergence
// that the new verifier refuses).
func agreeWithReference(t testing.TB, v *AssertionVerifier, token string) {
	t.Helper()
	got, err := v.Verify(token)
	if why := intentionalDivergence(token); why != "" {
		if err == nil {
			t.Fatalf("token with %s verified: %q", why, token)
		}
		return
	}
	want, refErr := referenceVerify(v, token)
	switch {
	case err != nil && refErr != nil:
		return
	case err != nil:
		t.Fatalf("refused what golang-jwt accepted: %v\ntoken %q\nreference %+v", err, token, want)
	case refErr != nil:
		t.Fatalf("accepted what golang-jwt refused (%v)\ntoken %q\ngot %+v", refErr, token, got)
	}
	if got.Customer != want.Customer || got.SecretID != want.SecretID || got.Subject != want.Subject ||
		got.JTI != want.JTI || !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		got.TTL != want.TTL || !reflect.DeepEqual(got.Grants, want.Grants) {
		t.Fatalf("token %q\ngot       %+v\nreference %+v", token, got, want)
	}
}

// differentialKeys: acme has two secrets valid at t0 (cur, cur2), one
// expired, one revoked and one not yet valid; globex has one.
func differentialKeys() StaticKeyring {
	return StaticKeyring{
		{ID: "cur", Customer: "acme", Value: []byte("cur-secret-0123456789abcdef01234"), NotBefore: t0.Add(-time.Hour)},
		{ID: "cur2", Customer: "acme", Value: []byte("cu2-secret-0123456789abcdef01234"), NotBefore: t0.Add(-time.Hour)},
		{ID: "old", Customer: "acme", Value: []byte("old-secret-0123456789abcdef01234"), NotAfter: t0.Add(-time.Hour)},
		{ID: "rev", Customer: "acme", Value: []byte("rev-secret-0123456789abcdef01234"), Revoked: true},
		{ID: "next", Customer: "acme", Value: []byte("nxt-secret-0123456789abcdef01234"), NotBefore: t0.Add(time.Hour)},
		{ID: "other", Customer: "globex", Value: []byte("oth-secret-0123456789abcdef01234")},
	}
}

// differentialVerifiers are the verifier settings every token is checked
// under: the defaults, and leeway with a longer lifetime and a small size.
func differentialVerifiers() []*AssertionVerifier {
	keys := differentialKeys()
	return []*AssertionVerifier{
		{Keys: keys, Audience: issuerURL, Now: clock(t0)},
		{Keys: keys, Audience: issuerURL, Now: clock(t0), Leeway: 30 * time.Second, MaxLifetime: 10 * time.Minute, MaxSize: 600},
	}
}

var differentialHashes = [...]func() hash.Hash{sha256.New, sha512.New384, sha512.New}

// differentialMACKeys are the differentialKeys indexes mode%8 picks (-1:
// the raw token).
var differentialMACKeys = [8]int{0, 1, 5, -1, 2, 3, 4, 0}

// differentialToken makes the token a fuzz input stands for. mode%8 picks
// the MAC key (cur, cur2, globex's other, -, old, rev, next, cur) or, for 3,
// takes header as a whole raw token; mode/8%3 picks the MAC's hash
// whatever the header says.
func differentialToken(keys StaticKeyring, header, claims string, mode byte) string {
	which := differentialMACKeys[mode%8]
	if which < 0 {
		return header
	}
	input := b64url([]byte(header)) + "." + b64url([]byte(claims))
	m := hmac.New(differentialHashes[int(mode/8)%3], keys[which].Value)
	m.Write([]byte(input))
	return input + "." + b64url(m.Sum(nil))
}

// differentialSeeds are headers and claims near the valid ones, each with
// its mode.
func differentialSeeds(t testing.TB) []struct {
	header, claims string
	mode           byte
} {
	t.Helper()
	claims := func(f func(m map[string]any)) string {
		m := map[string]any{"iss": "acme", "sub": "visitor-42", "aud": issuerURL, "jti": "a1",
			"iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix()}
		if f != nil {
			f(m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	valid := claims(nil)
	type seed = struct {
		header, claims string
		mode           byte
	}
	seeds := []seed{
		{`{"alg":"HS256","kid":"cur","typ":"JWT"}`, valid, 0},
		{`{"alg":"HS384","kid":"cur"}`, valid, 8},
		{`{"alg":"HS512","kid":"cur"}`, valid, 16},
		{`{"alg":"HS256","kid":"old"}`, valid, 4},
		{`{"alg":"HS256","kid":"rev"}`, valid, 5},
		{`{"alg":"HS256"}`, valid, 6},
		{`{"alg":"HS256"}`, valid, 0},
		{`{"alg":"HS256"}`, valid, 1},
		{`{"alg":"HS256","kid":"cur2"}`, valid, 1},
		{`{"alg":"HS256","kid":"other"}`, valid, 2},
		{`{"alg":"HS256"}`, claims(func(m map[string]any) { m["iss"] = "globex" }), 2},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) {
			m["aud"] = []string{"https://other.example", issuerURL}
			m["grants"] = map[string]any{"methods": []string{"INVITE"}, "dial": map[string]any{"allow": []string{"+44*"}}}
			m["ttl"] = 120
			m["nbf"] = t0.Unix()
		}), 0},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) { m["exp"] = float64(t0.Unix()) + 59.75; m["iat"] = float64(t0.Unix()) - 0.5 }), 0},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) { m["exp"] = t0.Add(20 * time.Second).Unix() }), 0},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) { m["iat"] = t0.Add(20 * time.Second).Unix() }), 0},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) { m["exp"] = t0.Add(8 * time.Minute).Unix() }), 0},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) { m["aud"] = []any{} }), 0},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) { m["aud"] = []any{"", nil} }), 0},
		{`{"alg":"HS256","kid":"cur"}`, `{"iss":"acme","sub":"v","aud":"https://issuer.example","jti":"j","iat":1767225600,"exp":1767225660,"exp":null,"EXP":1767225650,"aud":null}`, 0},
		{`{"alg":"HS256","kid":"cur"}`, `{"iss":"acme","sub":"v\u0041","aud":["https://issuer.example"],"jti":"j","iat":1767225600,"exp":1767225660}`, 0},
		{`{"alg":"HS256","kid":"cur","crit":["b64"]}`, valid, 0},
		{`{"alg":"HS256","kid":5}`, valid, 0},
		{`{"alg":"HS256","kid":"cur"}`, claims(func(m map[string]any) { m["exp"] = fmt.Sprint(t0.Add(time.Minute).Unix()) }), 0},
		{`{"alg":"none"}`, valid, 0},
		{`{"alg":"EdDSA","kid":"cur"}`, valid, 0},
		{`{"ALG":"HS256","kid":"cur"}`, valid, 0},
		{`null`, valid, 0},
		{`{"alg":"HS256","kid":"cur"}`, `null`, 0},
		{"a.b.c", "", 3},
		{"eyJhbGciOiJIUzI1NiJ9..", "", 3},
	}
	keys := differentialKeys()
	tok := differentialToken(keys, seeds[0].header, seeds[0].claims, 0)
	seeds = append(seeds, seed{tok, "", 3}, seed{nonCanonical(t, tok), "", 3}, seed{tok + "=", "", 3}, seed{tok[:len(tok)-1], "", 3})
	return seeds
}

func FuzzAssertionDifferential(f *testing.F) {
	for _, s := range differentialSeeds(f) {
		f.Add(s.header, s.claims, s.mode)
	}
	keys := differentialKeys()
	vs := differentialVerifiers()
	f.Fuzz(func(t *testing.T, header, claims string, mode byte) {
		tok := differentialToken(keys, header, claims, mode)
		for _, v := range vs {
			agreeWithReference(t, v, tok)
		}
	})
}

// TestAssertionVerifierAgreesWithGolangJWT checks generated assertions
// under both verifiers: each claim and the header are right most of the
// time and otherwise one of several wrong values, so that tokens with no,
// one or several faults all come up.
func TestAssertionVerifierAgreesWithGolangJWT(t *testing.T) {
	keys := differentialKeys()
	vs := differentialVerifiers()
	r := rand.New(rand.NewPCG(1, 2))
	absent := struct{}{}
	// usually returns good, else one of bad.
	usually := func(good any, bad ...any) any {
		if r.IntN(10) < 8 {
			return good
		}
		return bad[r.IntN(len(bad))]
	}
	now := t0.Unix()
	accepted := 0
	for i := range 4000 {
		m := map[string]any{}
		set := func(k string, v any) {
			if v != absent {
				m[k] = v
			}
		}
		set("iss", usually("acme", "globex", "", absent, 5))
		set("sub", usually("visitor", "", absent, "v\u00e9", nil))
		set("jti", usually("j1", "", absent, []string{"j"}))
		set("aud", usually(issuerURL, []string{issuerURL}, []string{"x", issuerURL}, []string{}, []string{""}, "",
			"https://other.example", []any{issuerURL, nil}, nil, absent, 5))
		set("iat", usually(now, now-30, now+20, now+40, float64(now)+0.9, now-7200, absent, nil, "x", 1e300))
		set("exp", usually(now+60, now+300, now+301, now+500, now, now-10, now+29, float64(now)+60.5, absent, nil, true, -1e300))
		set("nbf", usually(absent, now, now+20, now+40, float64(now)-0.1, "x"))
		set("ttl", usually(absent, 60, 0, -1, 1.5, "60", 1<<62))
		set("grants", usually(absent, map[string]any{"methods": []string{"INVITE"}}, map[string]any{"methods": []string{"invite"}}, nil, "x"))
		claims, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		alg := r.IntN(3)
		header := map[string]any{"alg": usually(AssertionAlgorithms[alg], "HS256", "RS256", "none", absent, 1)}
		if kid := usually("cur", "", "cur2", "old", "rev", "next", "other", "nope", absent); kid != absent {
			header["kid"] = kid
		}
		if r.IntN(3) == 0 {
			delete(header, "kid")
		}
		if header["alg"] == absent {
			delete(header, "alg")
		}
		h, err := json.Marshal(header)
		if err != nil {
			t.Fatal(err)
		}
		// The MAC: usually with the kid's secret (cur without kid) and
		// the header's hash.
		which := map[any]byte{"cur2": 1, "other": 2, "old": 4, "rev": 5, "next": 6}[header["kid"]]
		if r.IntN(5) == 0 {
			which = []byte{0, 1, 2, 4, 5, 6}[r.IntN(6)]
		}
		mode := which + byte(alg)*8
		tok := differentialToken(keys, string(h), string(claims), mode)
		for _, v := range vs {
			agreeWithReference(t, v, tok)
			if a, err := v.Verify(tok); err == nil && a != nil {
				accepted++
			}
		}
		if t.Failed() {
			t.Fatalf("case %d", i)
		}
	}
	if accepted < 200 {
		t.Fatalf("only %d generated verifications succeeded: the generator is too far from valid", accepted)
	}
}

// TestAssertionVerifierOnePass covers what the one-pass verifier must do,
// each case also checked against golang-jwt unless marked as an
// intentional divergence.
func TestAssertionVerifierOnePass(t *testing.T) {
	keys := differentialKeys()
	cur, cur2, other := keys[0], keys[1], keys[5]
	claims := func(f func(m map[string]any)) map[string]any {
		m := map[string]any{"iss": "acme", "sub": "visitor-42", "aud": issuerURL, "jti": "a1",
			"iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix()}
		if f != nil {
			f(m)
		}
		return m
	}
	mac := func(h func() hash.Hash, key []byte) func([]byte) []byte {
		return func(in []byte) []byte {
			m := hmac.New(h, key)
			m.Write(in)
			return m.Sum(nil)
		}
	}
	hs256 := func(header map[string]any, c map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return craft(t, header, c, mac(sha256.New, cur.Value)) }
	}
	kidCur := map[string]any{"alg": "HS256", "kid": "cur"}
	tests := []struct {
		name       string
		token      func(t *testing.T) string
		want       error
		wantSecret string
		diverges   bool
	}{
		{name: "an HS384 assertion is accepted",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS384", "kid": "cur"}, claims(nil), mac(sha512.New384, cur.Value))
			}, wantSecret: "cur"},
		{name: "an HS512 assertion is accepted",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS512", "kid": "cur"}, claims(nil), mac(sha512.New, cur.Value))
			}, wantSecret: "cur"},
		{name: "an HS384 header over an HS256 MAC is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS384", "kid": "cur"}, claims(nil), mac(sha256.New, cur.Value))
			}, want: ErrBadSignature},
		{name: "an alg none assertion is refused",
			token: func(t *testing.T) string { return craft(t, map[string]any{"alg": "none"}, claims(nil), nil) }, want: ErrAlgorithm},
		{name: "an EdDSA assertion is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "EdDSA", "kid": "cur"}, claims(nil), signWith(t, testKey(t, AlgEdDSA)))
			}, want: ErrAlgorithm},
		{name: "an RS256 assertion is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "RS256", "kid": "cur"}, claims(nil), signWith(t, testKey(t, AlgRS256)))
			}, want: ErrAlgorithm},
		{name: "an assertion without alg is refused", token: hs256(map[string]any{"kid": "cur"}, claims(nil)), want: ErrAlgorithm},
		{name: "an assertion whose alg is not a string is refused", token: hs256(map[string]any{"alg": 256, "kid": "cur"}, claims(nil)), want: ErrAlgorithm},
		{name: "an assertion whose header spells ALG in capitals is refused", token: hs256(map[string]any{"ALG": "HS256", "kid": "cur"}, claims(nil)), want: ErrAlgorithm},
		{name: "an assertion with a crit header is refused",
			token: hs256(map[string]any{"alg": "HS256", "kid": "cur", "crit": []string{"exp"}}, claims(nil)), want: ErrMalformed, diverges: true},
		{name: "an assertion whose kid is a number is refused",
			token: hs256(map[string]any{"alg": "HS256", "kid": 7}, claims(nil)), want: ErrMalformed, diverges: true},
		{name: "an assertion whose kid names another customer's secret is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS256", "kid": "other"}, claims(nil), mac(sha256.New, other.Value))
			}, want: ErrUnknownKey},
		{name: "an assertion without kid signed with the second valid secret names it",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS256"}, claims(nil), mac(sha256.New, cur2.Value))
			}, wantSecret: "cur2"},
		{name: "an assertion without kid signed with the first valid secret names it",
			token: hs256(map[string]any{"alg": "HS256"}, claims(nil)), wantSecret: "cur"},
		{name: "an assertion without kid signed with another customer's secret is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS256"}, claims(nil), mac(sha256.New, other.Value))
			}, want: ErrBadSignature},
		{name: "an assertion whose MAC carries base64 padding is refused",
			token: func(t *testing.T) string { return hs256(kidCur, claims(nil))(t) + "=" }, want: ErrMalformed},
		{name: "an assertion whose payload carries base64 padding is refused",
			token: func(t *testing.T) string {
				parts := strings.Split(hs256(kidCur, claims(nil))(t), ".")
				raw, err := b64Strict.DecodeString(parts[1])
				if err != nil {
					t.Fatal(err)
				}
				for len(raw)%3 == 0 {
					raw = append(raw, ' ')
				}
				in := parts[0] + "." + base64.URLEncoding.EncodeToString(raw)
				return in + "." + b64url(mac(sha256.New, cur.Value)([]byte(in)))
			}, want: ErrMalformed},
		{name: "an assertion whose MAC is in standard rather than url base64 is refused",
			token: func(t *testing.T) string {
				for i := range 200 {
					tok := hs256(kidCur, claims(func(m map[string]any) { m["jti"] = fmt.Sprint("a", i) }))(t)
					dot := strings.LastIndexByte(tok, '.')
					if sig := tok[dot+1:]; strings.ContainsAny(sig, "-_") {
						return tok[:dot+1] + strings.NewReplacer("-", "+", "_", "/").Replace(sig)
					}
				}
				t.Fatal("no MAC with - or _ in 200 tries")
				return ""
			}, want: ErrMalformed},
		{name: "an assertion whose MAC is spelt in non-canonical base64 is refused",
			token: func(t *testing.T) string { return nonCanonical(t, hs256(kidCur, claims(nil))(t)) }, want: ErrMalformed},
		{name: "an assertion whose exp is a string is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["exp"] = fmt.Sprint(t0.Add(time.Minute).Unix()) })), want: ErrMalformed, diverges: true},
		{name: "an assertion whose iat is a string is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["iat"] = fmt.Sprint(t0.Unix()) })), want: ErrMalformed, diverges: true},
		{name: "an assertion naming a claim in another case is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["SUB"] = "mallory" })), want: ErrMalformed, diverges: true},
		{name: "an assertion naming a claim with a Unicode case fold is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { delete(m, "sub"); m["ſub"] = "mallory" })), want: ErrMalformed, diverges: true},
		{name: "an assertion with unknown members, nested values and escapes verifies",
			token: hs256(kidCur, claims(func(m map[string]any) {
				m["x"] = map[string]any{"a": []any{1.5e3, "}]\",\u00e9", map[string]any{}, true}, "b": nil}
				m["y"] = "<\u2028>"
			})), wantSecret: "cur"},
		{name: "an assertion whose exp is true is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["exp"] = true })), want: ErrMalformed},
		{name: "an assertion with fractional seconds is accepted",
			token: hs256(kidCur, claims(func(m map[string]any) { m["exp"] = float64(t0.Unix()) + 30.5 })), wantSecret: "cur"},
		{name: "an assertion whose aud is an array naming the issuer is accepted",
			token: hs256(kidCur, claims(func(m map[string]any) { m["aud"] = []string{"https://other.example", issuerURL} })), wantSecret: "cur"},
		{name: "an assertion whose aud is an array not naming the issuer is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["aud"] = []string{"https://other.example"} })), want: ErrAudience},
		{name: "an assertion whose aud array holds a number is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["aud"] = []any{issuerURL, 5} })), want: ErrMalformed},
		{name: "an assertion whose aud array holds null is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["aud"] = []any{nil, issuerURL} })), want: ErrMalformed},
		{name: "an assertion whose aud is an empty array is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["aud"] = []string{} })), want: ErrMissingClaim},
		{name: "an assertion whose aud is an escaped spelling of the issuer is accepted",
			token: func(t *testing.T) string {
				tok := hs256(kidCur, claims(nil))(t)
				parts := strings.Split(tok, ".")
				raw, _ := b64Strict.DecodeString(parts[1])
				raw = []byte(strings.Replace(string(raw), `"https:`, `"\u0068ttps:`, 1))
				in := parts[0] + "." + b64url(raw)
				return in + "." + b64url(mac(sha256.New, cur.Value)([]byte(in)))
			}, wantSecret: "cur"},
		{name: "an assertion without exp is refused even when also expired in other ways",
			token: hs256(kidCur, claims(func(m map[string]any) { delete(m, "exp"); m["aud"] = "x" })), want: ErrMissingClaim},
		{name: "an assertion with a future nbf is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["nbf"] = t0.Add(10 * time.Second).Unix() })), want: ErrNotYetValid},
		{name: "an assertion longer than MaxSize is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["pad"] = strings.Repeat("x", DefaultMaxTokenSize) })), want: ErrTooLarge},
		{name: "an assertion of four segments is refused",
			token: func(t *testing.T) string { return hs256(kidCur, claims(nil))(t) + ".x" }, want: ErrMalformed},
		{name: "an assertion of two segments is refused",
			token: func(t *testing.T) string {
				tok := hs256(kidCur, claims(nil))(t)
				return tok[:strings.LastIndexByte(tok, '.')]
			}, want: ErrMalformed},
		{name: "an assertion with an empty header is refused",
			token: func(t *testing.T) string {
				tok := hs256(kidCur, claims(nil))(t)
				return tok[strings.IndexByte(tok, '.'):]
			}, want: ErrMalformed},
		{name: "an assertion whose payload is not an object is refused",
			token: func(t *testing.T) string {
				in := b64url([]byte(`{"alg":"HS256","kid":"cur"}`)) + "." + b64url([]byte(`["acme"]`))
				return in + "." + b64url(mac(sha256.New, cur.Value)([]byte(in)))
			}, want: ErrMalformed},
		{name: "an assertion naming a claim twice is refused",
			token: func(t *testing.T) string {
				in := b64url([]byte(`{"alg":"HS256","kid":"cur"}`)) + "." +
					b64url([]byte(`{"iss":"acme","sub":"first","sub":"visitor-42","aud":"https://issuer.example","jti":"a1","iat":1767225600,"exp":1767225660}`))
				return in + "." + b64url(mac(sha256.New, cur.Value)([]byte(in)))
			}, want: ErrMalformed, diverges: true},
		{name: "an assertion with two grants objects is refused, not merged or cut to the last",
			token: func(t *testing.T) string {
				in := b64url([]byte(`{"alg":"HS256","kid":"cur"}`)) + "." +
					b64url([]byte(`{"iss":"acme","sub":"visitor-42","aud":"https://issuer.example","jti":"a1","iat":1767225600,"exp":1767225660,`+
						`"grants":{"methods":["MESSAGE"],"dial":{"allow":["+44*"]}},"grants":{"aor":"sip:x@y"}}`))
				return in + "." + b64url(mac(sha256.New, cur.Value)([]byte(in)))
			}, want: ErrMalformed, diverges: true},
		{name: "an assertion whose ttl is beyond a time.Duration is refused",
			token: hs256(kidCur, claims(func(m map[string]any) { m["ttl"] = int64(math.MaxInt64) })), want: ErrMalformed, diverges: true},
		{name: "an assertion with a line break inside its MAC is refused",
			token: func(t *testing.T) string {
				tok := hs256(kidCur, claims(nil))(t)
				return tok[:len(tok)-4] + "\r\n" + tok[len(tok)-4:]
			}, want: ErrMalformed, diverges: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &AssertionVerifier{Keys: keys, Audience: issuerURL, Now: clock(t0)}
			tok := tt.token(t)
			a, err := v.Verify(tok)
			wantErr(t, err, tt.want)
			if tt.diverges {
				if intentionalDivergence(tok) == "" {
					t.Fatalf("case marked as a divergence is not one the differential excludes")
				}
				if _, refErr := referenceVerify(v, tok); refErr != nil {
					t.Fatalf("golang-jwt refuses it too (%v): not a divergence", refErr)
				}
				return
			}
			ref, refErr := referenceVerify(v, tok)
			if errKind(refErr) != errKind(err) {
				t.Fatalf("golang-jwt says %v, one pass says %v", refErr, err)
			}
			if tt.want != nil {
				return
			}
			if a.Customer != "acme" || a.Subject != "visitor-42" || a.JTI != "a1" || a.SecretID != tt.wantSecret {
				t.Fatalf("assertion = %+v, want customer acme, subject visitor-42, jti a1, secret %s", a, tt.wantSecret)
			}
			if !reflect.DeepEqual(a, ref) {
				t.Fatalf("assertion = %+v, golang-jwt %+v", a, ref)
			}
		})
	}
}

// TestAssertionHeaderCache: only headers of assertions that verified are
// kept; a kept header still has its kid looked up and its alg checked.
func TestAssertionHeaderCache(t *testing.T) {
	keys := differentialKeys()
	cur := keys[0]
	header := map[string]any{"alg": "HS256", "kid": "cur", "typ": "header-cache-test"}
	good := craft(t, header, map[string]any{"iss": "acme", "sub": "v", "aud": issuerURL, "jti": "j",
		"iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix()}, hmacSHA256(cur.Value))
	seg := good[:strings.IndexByte(good, '.')]
	cachedSeg := func() bool {
		_, ok := assertionHeaders.get(seg)
		return ok
	}
	v := &AssertionVerifier{Keys: keys, Audience: issuerURL, Now: clock(t0)}
	if _, err := v.Verify(nonCanonical(t, good)); err == nil {
		t.Fatal("a non-canonical MAC verified")
	}
	if cachedSeg() {
		t.Fatal("the header of a refused assertion was cached")
	}
	if _, err := v.Verify(good); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !cachedSeg() {
		t.Fatal("the header of a verified assertion was not cached")
	}
	if _, err := v.Verify(good); err != nil {
		t.Fatalf("verify with the cached header: %v", err)
	}
	without := &AssertionVerifier{Keys: StaticKeyring{keys[1]}, Audience: issuerURL, Now: clock(t0)}
	if _, err := without.Verify(good); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("cached header, kid gone from the keyring: %v, want ErrUnknownKey", err)
	}
	saved := AssertionAlgorithms
	AssertionAlgorithms = []string{"HS512"}
	_, err := v.Verify(good)
	AssertionAlgorithms = saved
	if !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("cached header, HS256 no longer allowed: %v, want ErrAlgorithm", err)
	}
}

// TestAssertionMACPoolsFollowTheSecretValue: pooled HMAC states are found
// by the secret's value, so a secret id whose value changed verifies with
// the new value only.
func TestAssertionMACPoolsFollowTheSecretValue(t *testing.T) {
	first := Secret{ID: "k", Customer: "acme", Value: []byte("first-secret-0123456789abcdef012")}
	second := first
	second.Value = []byte("second-secret-0123456789abcdef01")
	claims := map[string]any{"iss": "acme", "sub": "v", "aud": issuerURL, "jti": "j", "iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix()}
	tok := craft(t, map[string]any{"alg": "HS256", "kid": "k"}, claims, hmacSHA256(first.Value))
	if _, err := (&AssertionVerifier{Keys: StaticKeyring{first}, Audience: issuerURL, Now: clock(t0)}).Verify(tok); err != nil {
		t.Fatalf("verify with the first value: %v", err)
	}
	if _, err := (&AssertionVerifier{Keys: StaticKeyring{second}, Audience: issuerURL, Now: clock(t0)}).Verify(tok); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("verify with the second value: %v, want ErrBadSignature", err)
	}
}

// TestAssertionVerifyConcurrently shares pooled scratch and HMAC states
// between goroutines (run with -race): each sees its own claims.
func TestAssertionVerifyConcurrently(t *testing.T) {
	keys := differentialKeys()
	v := &AssertionVerifier{Keys: keys, Audience: issuerURL, Now: clock(t0)}
	hashes := []func() hash.Hash{sha256.New, sha512.New384, sha512.New}
	type job struct{ tok, bad, jti, secret string }
	jobs := make([][]job, 4)
	for g := range jobs {
		for i := range 100 {
			alg := i % 3
			jti := fmt.Sprintf("g%d-%d", g, i)
			claims := map[string]any{"iss": "acme", "sub": "v", "aud": []string{issuerURL}, "jti": jti,
				"iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix(), "grants": map[string]any{"methods": []string{"INVITE"}}}
			key := keys[i%2]
			tok := craft(t, map[string]any{"alg": AssertionAlgorithms[alg]}, claims, func(in []byte) []byte {
				m := hmac.New(hashes[alg], key.Value)
				m.Write(in)
				return m.Sum(nil)
			})
			jobs[g] = append(jobs[g], job{tok: tok, bad: nonCanonical(t, tok), jti: jti, secret: key.ID})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	for _, js := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range js {
				a, err := v.Verify(j.tok)
				if err == nil && (a.JTI != j.jti || a.SecretID != j.secret || a.Grants == nil || a.Grants.Methods[0] != "INVITE") {
					err = fmt.Errorf("token %s verified as %+v", j.jti, a)
				}
				if err == nil {
					if _, bad := v.Verify(j.bad); bad == nil {
						err = fmt.Errorf("non-canonical %s verified", j.jti)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
