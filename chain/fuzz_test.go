package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func FuzzEphemeralUsername(f *testing.F) {
	f.Add("1767225600:alice", "+CKIbET1K2zFrSOk2S33FcZCpuI=", "alice", int64(3600), false, byte(':'))
	f.Add("alice:1767225600", "mqFKA1vPv/XFx22mI5q0hZosFv4=", "alice:work", int64(60), true, byte(':'))
	f.Add("1767225600-alice", "0MLwIYA0yA8/qyf247e/CSfIsV0=", "a-b", int64(1), false, byte('-'))
	f.Add("99999999999999999999:x", "", "x", int64(86400), false, byte(0))
	f.Add("-1:x", "AAAA", "\x00", int64(-5), true, byte('1'))
	f.Add("+1767225600:alice", "=", "alice@example.com", int64(1e9), false, byte('@'))
	secret := []byte("s3cret")
	f.Fuzz(func(t *testing.T, username, password, user string, life int64, userFirst bool, sep byte) {
		format := EphemeralFormat{UserFirst: userFirst, Separator: sep}
		now := time.Unix(1767225600-3600, 0)
		v := &EphemeralVerifier{Format: format, Secrets: [][]byte{[]byte("older"), secret}, MaxLifetime: 48 * time.Hour, Now: clock(now)}

		// Arbitrary input never panics and never verifies with a wrong password.
		if u, exp, err := format.ParseUsername(username); err == nil {
			if u == "" || exp.Unix() < 0 {
				t.Fatalf("ParseUsername(%q) = %q, %v", username, u, exp)
			}
		}
		if cred, err := v.Check(username, password); err == nil {
			want, _ := format.Password(v.Secrets[cred.SecretIndex], username)
			if want != password {
				t.Fatalf("Check(%q, %q) accepted a password that is not derived", username, password)
			}
		}

		// A credential minted for a usable user and expiry always verifies.
		if user == "" || sep >= '0' && sep <= '9' {
			return
		}
		life = 1 + (life%(48*3600)+48*3600)%(48*3600)
		expiry := now.Add(time.Duration(life) * time.Second)
		mu, mp, err := MintEphemeral(secret, user, expiry, format)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := v.Check(mu, mp)
		if err != nil {
			t.Fatalf("minted %q/%q for %q does not verify: %v", mu, mp, user, err)
		}
		if cred.User != user || !cred.Expiry.Equal(expiry) || cred.SecretIndex != 1 {
			t.Fatalf("minted credential for %q, %v verified as %+v", user, expiry, cred)
		}
	})
}

// fuzzEdgeKey is a fixed Ed25519 key, so that the committed corpus holds
// tokens that verify.
func fuzzEdgeKey(t testing.TB) *SigningKey {
	seed := sha256.Sum256([]byte("trunkpass chain fuzz key"))
	k, err := newSigningKey(AlgEdDSA, ed25519.NewKeyFromSeed(seed[:]), KeyActive, t0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func FuzzEdgeVerify(f *testing.F) {
	key := fuzzEdgeKey(f)
	valid, err := MintEdgeToken(key, validEdgeClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1] + "h")
	f.Add(craft(f, map[string]any{"alg": "none", "kid": key.ID}, edgeClaimsMap(), nil))
	f.Add(craft(f, map[string]any{"alg": "HS256", "kid": key.ID}, edgeClaimsMap(), hmacSHA256(key.Private.Public().(ed25519.PublicKey))))
	// Signed by the key itself, with header members chain ignores (golang-jwt
	// does not enforce "crit"): these verify, and only these.
	signed := map[string]bool{valid: true}
	for _, h := range []map[string]any{
		{"alg": "EdDSA", "kid": key.ID, "crit": []string{"exp"}, "exp": 1},
		{"alg": "EdDSA", "kid": key.ID, "jku": "https://evil.example/jwks"},
	} {
		tok := craft(f, h, edgeClaimsMap(), signWith(f, key))
		signed[tok] = true
		f.Add(tok)
	}
	f.Add(strings.Replace(valid, ".", "=.", 1))
	f.Add("..")
	v := &EdgeVerifier{Keys: KeySetOf(key), Issuer: "https://issuer.example", Audience: "sip:trunk.example.net", MaxAge: time.Hour, Now: clock(t0)}
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := v.Verify(token)
		if err != nil {
			return
		}
		if !signed[token] {
			t.Fatalf("a token the key did not sign verified:\n%q\nminted:\n%q", token, valid)
		}
		if claims.Subject != "alice" {
			t.Fatalf("claims = %+v", claims)
		}
	})
}

func FuzzAssertionVerify(f *testing.F) {
	cur := Secret{ID: "cur", Customer: "acme", Value: []byte("cur-secret-0123456789abcdef01234")}
	old := Secret{ID: "old", Customer: "acme", Value: []byte("old-secret-0123456789abcdef01234"), NotAfter: t0.Add(-time.Hour)}
	claims := &AssertionClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "acme", Subject: "visitor", Audience: jwt.ClaimStrings{issuerURL}, ID: "j1",
		IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Minute)),
	}, Grants: &SIPGrant{Methods: []string{"INVITE"}, Dial: &DialRules{Allow: []string{"+44*"}}}}
	valid := map[string]bool{}
	for _, alg := range AssertionAlgorithms {
		for _, omitKid := range []bool{false, true} {
			tok, err := MintAssertion(cur, claims, alg, omitKid)
			if err != nil {
				f.Fatal(err)
			}
			valid[tok] = true
			f.Add(tok)
		}
	}
	oldTok, err := MintAssertion(old, claims, "HS256", false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(oldTok)
	f.Add(craft(f, map[string]any{"alg": "none"}, map[string]any{"iss": "acme"}, nil))
	f.Add("a.b.c")
	v := &AssertionVerifier{Keys: StaticKeyring{cur, old}, Audience: issuerURL, Now: clock(t0)}
	f.Fuzz(func(t *testing.T, token string) {
		a, err := v.Verify(token)
		if err != nil {
			return
		}
		if !valid[token] {
			t.Fatalf("a token that was not minted verified: %q", token)
		}
		if a.Customer != "acme" || a.SecretID != "cur" || a.Subject != "visitor" {
			t.Fatalf("assertion = %+v", a)
		}
	})
}

func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{
		"tel:+44-20-7946-0000", "sip:+442079460000@host;user=phone", "sip:+44(20)79460000@host",
		"sips:%2B44%2020@host:5061", "<sip:alice@acme.example;transport=ws>", "sip:alice:pw@[2001:db8::1]:5060",
		"sip:@host", "tel:", "sip:%zz@host", "sip:a@b@c", "tel:+1*2#", "SIP:Bob@ACME.Example?subject=x",
	} {
		f.Add(s)
	}
	base := SIPGrant{Dial: &DialRules{Allow: []string{"+44*", "sip:*@acme.example", "sip:al*@globex.example"}, Deny: []string{"+449*", "sip:boss@acme.example"}}}
	req := &SIPGrant{Dial: &DialRules{Allow: []string{"*", "+4420*", "sip:alice@globex.example"}, Deny: []string{"+4421*"}}}
	narrowed, err := Narrow(base, req)
	if err != nil {
		f.Fatal(err)
	}
	all := SIPGrant{Dial: &DialRules{Allow: []string{"*"}}}
	none := SIPGrant{Dial: &DialRules{Allow: []string{"*"}, Deny: []string{"*"}}}
	f.Fuzz(func(t *testing.T, uri string) {
		d, ok := parseDestination(uri)
		if ok && d.numbers == nil && d.uri == "" {
			t.Fatalf("parseDestination(%q) ok with nothing to compare", uri)
		}
		if all.AllowsDestination(uri) != ok {
			t.Fatalf("allow * on %q = %v, parse ok = %v", uri, !ok, ok)
		}
		if none.AllowsDestination(uri) {
			t.Fatalf("deny * allowed %q", uri)
		}
		if narrowed.AllowsDestination(uri) && !(base.AllowsDestination(uri) && req.AllowsDestination(uri)) {
			t.Fatalf("narrowing widened the grant for %q", uri)
		}
		// Patterns parse or fail cleanly, and a parsed pattern matches itself
		// when it has no wildcard.
		if p, err := parsePattern(uri); err == nil && !p.star && !p.within(p) {
			t.Fatalf("pattern %q is not within itself", uri)
		}
	})
}
