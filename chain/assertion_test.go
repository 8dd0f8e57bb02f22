package chain

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const issuerURL = "https://issuer.example"

func TestAssertionVerifier(t *testing.T) {
	day := 24 * time.Hour
	// acme has three secrets: "old" (valid until t0-1h), "cur" (from t0-1h),
	// and "next" (from t0+1h). "rev" is revoked; "other" is globex's.
	old := Secret{ID: "old", Customer: "acme", Value: []byte("old-secret-0123456789abcdef01234"), NotBefore: t0.Add(-30 * day), NotAfter: t0.Add(-time.Hour)}
	cur := Secret{ID: "cur", Customer: "acme", Value: []byte("cur-secret-0123456789abcdef01234"), NotBefore: t0.Add(-time.Hour)}
	next := Secret{ID: "next", Customer: "acme", Value: []byte("nxt-secret-0123456789abcdef01234"), NotBefore: t0.Add(time.Hour)}
	rev := Secret{ID: "rev", Customer: "acme", Value: []byte("rev-secret-0123456789abcdef01234"), NotBefore: t0.Add(-day), Revoked: true}
	other := Secret{ID: "other", Customer: "globex", Value: []byte("oth-secret-0123456789abcdef01234"), NotBefore: t0.Add(-day)}
	keys := StaticKeyring{old, cur, next, rev, other}
	ed := testKey(t, AlgEdDSA)
	rs := testKey(t, AlgRS256)

	claimsMap := func(f func(m map[string]any)) map[string]any {
		m := map[string]any{
			"iss": "acme", "sub": "visitor-42", "aud": issuerURL,
			"iat": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix(), "jti": "a1",
		}
		if f != nil {
			f(m)
		}
		return m
	}
	hs := func(h func() hash.Hash, key []byte) func([]byte) []byte {
		return func(in []byte) []byte {
			m := hmac.New(h, key)
			m.Write(in)
			return m.Sum(nil)
		}
	}
	// signed crafts an HS256 token with secret s, kid when withKid.
	signed := func(s Secret, withKid bool, f func(m map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string {
			h := map[string]any{"alg": "HS256", "typ": "JWT"}
			if withKid {
				h["kid"] = s.ID
			}
			return craft(t, h, claimsMap(f), hs(sha256.New, s.Value))
		}
	}
	minted := func(s Secret, alg string, omitKid bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := &AssertionClaims{RegisteredClaims: jwt.RegisteredClaims{
				Issuer: "acme", Subject: "visitor-42", Audience: jwt.ClaimStrings{issuerURL},
				IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(5 * time.Minute)), ID: "a1",
			}}
			tok, err := MintAssertion(s, c, alg, omitKid)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	tests := []struct {
		name       string
		token      func(t *testing.T) string
		now        time.Time
		wantSecret string
		want       error
	}{
		{name: "an HS256 assertion with kid is accepted", token: minted(cur, "HS256", false), wantSecret: "cur"},
		{name: "an HS384 assertion is accepted", token: minted(cur, "HS384", false), wantSecret: "cur"},
		{name: "an HS512 assertion is accepted", token: minted(cur, "HS512", false), wantSecret: "cur"},
		{name: "an assertion without kid is verified by the one secret valid at iat", token: minted(cur, "HS256", true), wantSecret: "cur"},
		{name: "an assertion without kid made when the old secret was valid is verified by it",
			token: signed(old, false, func(m map[string]any) {
				m["iat"] = t0.Add(-2 * time.Hour).Unix()
				m["exp"] = t0.Add(-2*time.Hour + 5*time.Minute).Unix()
			}), now: t0.Add(-2 * time.Hour), wantSecret: "old"},
		{name: "an assertion without kid signed with a secret outside its window is refused",
			token: signed(old, false, nil), want: ErrBadSignature},
		{name: "an assertion without kid signed with a revoked secret is refused",
			token: signed(rev, false, nil), want: ErrBadSignature},
		{name: "an assertion without kid signed with a secret not yet valid is refused",
			token: signed(next, false, nil), want: ErrBadSignature},
		{name: "an assertion without kid whose customer has no secret valid at iat is refused",
			token: signed(old, false, func(m map[string]any) {
				m["iat"] = t0.Add(-60 * day).Unix()
				m["exp"] = t0.Add(-60*day + time.Minute).Unix()
			}), now: t0.Add(-60 * day), want: ErrUnknownKey},
		{name: "an assertion whose kid names an expired secret is refused", token: signed(old, true, nil), want: ErrUnknownKey},
		{name: "an assertion whose kid names a revoked secret is refused", token: signed(rev, true, nil), want: ErrUnknownKey},
		{name: "an assertion whose kid names a secret not yet valid is refused", token: signed(next, true, nil), want: ErrUnknownKey},
		{name: "an assertion whose kid names another customer's secret is refused", token: signed(other, true, nil), want: ErrUnknownKey},
		{name: "an assertion whose kid is unknown is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS256", "kid": "nope"}, claimsMap(nil), hs(sha256.New, cur.Value))
			}, want: ErrUnknownKey},
		{name: "an assertion for a customer that does not exist is refused",
			token: signed(cur, false, func(m map[string]any) { m["iss"] = "nobody" }), want: ErrUnknownKey},
		{name: "an assertion with a kid signed with another secret is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS256", "kid": "cur"}, claimsMap(nil), hs(sha256.New, other.Value))
			}, want: ErrBadSignature},
		{name: "an assertion with a tampered payload is refused",
			token: func(t *testing.T) string {
				parts := strings.Split(signed(cur, true, nil)(t), ".")
				parts[1] = strings.Split(craft(t, map[string]any{}, claimsMap(func(m map[string]any) { m["sub"] = "root" }), nil), ".")[1]
				return strings.Join(parts, ".")
			}, want: ErrBadSignature},
		{name: "an assertion whose MAC is spelt in non-canonical base64 is refused",
			token: func(t *testing.T) string { return nonCanonical(t, minted(cur, "HS256", false)(t)) }, want: ErrMalformed},
		{name: "an expired assertion is refused", token: minted(cur, "HS256", false), now: t0.Add(5 * time.Minute), want: ErrExpired},
		{name: "an assertion whose iat is in the future is refused",
			token: signed(cur, true, func(m map[string]any) { m["iat"] = t0.Add(time.Minute).Unix() }), want: ErrNotYetValid},
		{name: "an assertion for another audience is refused",
			token: signed(cur, true, func(m map[string]any) { m["aud"] = "https://other.example" }), want: ErrAudience},
		{name: "an assertion without jti is refused",
			token: signed(cur, true, func(m map[string]any) { delete(m, "jti") }), want: ErrMissingClaim},
		{name: "an assertion without sub is refused",
			token: signed(cur, true, func(m map[string]any) { delete(m, "sub") }), want: ErrMissingClaim},
		{name: "an assertion without iss is refused",
			token: signed(cur, true, func(m map[string]any) { delete(m, "iss") }), want: ErrMissingClaim},
		{name: "an assertion without iat is refused",
			token: signed(cur, true, func(m map[string]any) { delete(m, "iat") }), want: ErrMissingClaim},
		{name: "an assertion without exp is refused",
			token: signed(cur, true, func(m map[string]any) { delete(m, "exp") }), want: ErrMissingClaim},
		{name: "an assertion living 301 s is refused",
			token: signed(cur, true, func(m map[string]any) { m["exp"] = t0.Add(301 * time.Second).Unix() }), want: ErrLifetime},
		{name: "an assertion with a negative ttl is refused",
			token: signed(cur, true, func(m map[string]any) { m["ttl"] = -5 }), want: ErrMalformed},
		{name: "an assertion with a malformed grant is refused",
			token: signed(cur, true, func(m map[string]any) { m["grants"] = map[string]any{"methods": []string{"invite"}} }), want: ErrMalformed},
		{name: "an RS256 assertion is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "RS256", "kid": "cur"}, claimsMap(nil), signWith(t, rs))
			}, want: ErrAlgorithm},
		{name: "an EdDSA assertion is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "EdDSA", "kid": "cur"}, claimsMap(nil), signWith(t, ed))
			}, want: ErrAlgorithm},
		{name: "an alg none assertion is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "none", "kid": "cur"}, claimsMap(nil), nil)
			}, want: ErrAlgorithm},
		{name: "an HS512 assertion with a truncated HS256-length MAC is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS512", "kid": "cur"}, claimsMap(nil),
					func(in []byte) []byte { return hs(sha512.New, cur.Value)(in)[:32] })
			}, want: ErrBadSignature},
		{name: "an assertion longer than MaxSize is refused",
			token: signed(cur, true, func(m map[string]any) { m["pad"] = strings.Repeat("x", DefaultMaxTokenSize) }), want: ErrTooLarge},
		{name: "a malformed assertion is refused",
			token: func(t *testing.T) string { return "not-a-jwt" }, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			v := &AssertionVerifier{Keys: keys, Audience: issuerURL, Now: clock(now)}
			a, err := v.Verify(tt.token(t))
			wantErr(t, err, tt.want)
			if tt.want != nil {
				return
			}
			if a.Customer != "acme" || a.Subject != "visitor-42" || a.JTI != "a1" || a.SecretID != tt.wantSecret {
				t.Fatalf("assertion = %+v, want customer acme, subject visitor-42, jti a1, secret %s", a, tt.wantSecret)
			}
		})
	}
}

func TestAssertionVerifierWithSeveralValidSecretsNamesTheOneThatSigned(t *testing.T) {
	a := Secret{ID: "a", Customer: "acme", Value: []byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")}
	b := Secret{ID: "b", Customer: "acme", Value: []byte("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")}
	v := &AssertionVerifier{Keys: StaticKeyring{a, b}, Audience: issuerURL, Now: clock(t0)}
	for _, s := range []Secret{a, b} {
		c := &AssertionClaims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: "acme", Subject: "v", Audience: jwt.ClaimStrings{issuerURL}, ID: "j",
				IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Minute)),
			},
			Grants: &SIPGrant{Methods: []string{"INVITE"}},
			TTL:    120,
		}
		tok, err := MintAssertion(s, c, "HS256", true)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("verify assertion signed with %s: %v", s.ID, err)
		}
		if got.SecretID != s.ID || got.TTL != 2*time.Minute || got.Grants == nil || got.Grants.Methods[0] != "INVITE" {
			t.Fatalf("assertion signed with %s = %+v", s.ID, got)
		}
	}
}

func TestMintAssertionRefusesNonHMACAlgorithms(t *testing.T) {
	for _, alg := range []string{"RS256", "EdDSA", "none", "HS1"} {
		if _, err := MintAssertion(Secret{ID: "x", Value: []byte("k")}, &AssertionClaims{}, alg, false); !isErr(err, ErrAlgorithm) {
			t.Errorf("MintAssertion(%s) = %v, want ErrAlgorithm", alg, err)
		}
	}
}
