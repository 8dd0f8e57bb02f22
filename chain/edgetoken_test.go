package chain

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEdgeVerifier(t *testing.T) {
	ed, es, rs := testKey(t, AlgEdDSA), testKey(t, AlgES256), testKey(t, AlgRS256)
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := KeySetOf(ed, es, rs)

	// claimsWith returns the valid claims changed by f.
	claimsWith := func(f func(m map[string]any)) map[string]any {
		m := edgeClaimsMap()
		if f != nil {
			f(m)
		}
		return m
	}
	// signed crafts a token with key's alg, kid and signature.
	signed := func(key *SigningKey, claims map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string {
			return craft(t, map[string]any{"alg": key.Alg, "kid": key.ID, "typ": "JWT"}, claims, signWith(t, key))
		}
	}
	minted := func(key *SigningKey) func(t *testing.T) string {
		return func(t *testing.T) string {
			tok, err := MintEdgeToken(key, validEdgeClaims())
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}

	tests := []struct {
		name   string
		token  func(t *testing.T) string
		now    time.Time
		leeway time.Duration
		maxAge time.Duration
		want   error
	}{
		{name: "an EdDSA token minted by chain is accepted", token: minted(ed), want: nil},
		{name: "an ES256 token minted by chain is accepted", token: minted(es), want: nil},
		{name: "an RS256 token minted by chain is accepted", token: minted(rs), want: nil},
		{name: "a token one second before exp is accepted", token: minted(ed), now: t0.Add(10*time.Minute - time.Second)},
		{name: "an expired token is refused", token: minted(ed), now: t0.Add(10 * time.Minute), want: ErrExpired},
		{name: "an expired token within the leeway is accepted", token: minted(ed), now: t0.Add(10*time.Minute + 20*time.Second), leeway: 30 * time.Second},
		{name: "an expired token beyond the leeway is refused", token: minted(ed), now: t0.Add(10*time.Minute + 31*time.Second), leeway: 30 * time.Second, want: ErrExpired},
		{name: "a token whose nbf is in the future is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { m["nbf"] = t0.Add(time.Minute).Unix() })), want: ErrNotYetValid},
		{name: "a token whose iat is in the future is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { m["iat"] = t0.Add(time.Minute).Unix(); delete(m, "nbf") })), want: ErrNotYetValid},
		{name: "a token whose nbf is in the future within the leeway is accepted",
			token: signed(ed, claimsWith(func(m map[string]any) { m["nbf"] = t0.Add(20 * time.Second).Unix() })), leeway: 30 * time.Second},
		{name: "a token for another audience is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { m["aud"] = "sip:other.example.net" })), want: ErrAudience},
		{name: "a token without aud is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { delete(m, "aud") })), want: ErrMissingClaim},
		{name: "a token from another issuer is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { m["iss"] = "https://evil.example" })), want: ErrIssuer},
		{name: "a token with an unknown kid is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "EdDSA", "kid": "nope"}, edgeClaimsMap(), signWith(t, ed))
			}, want: ErrUnknownKey},
		{name: "a token without kid is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "EdDSA"}, edgeClaimsMap(), signWith(t, ed))
			}, want: ErrUnknownKey},
		{name: "an alg none token is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "none", "kid": ed.ID}, edgeClaimsMap(), nil)
			}, want: ErrAlgorithm},
		{name: "an HS256 token keyed with the EdDSA public key bytes is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS256", "kid": ed.ID}, edgeClaimsMap(),
					hmacSHA256(publicKeyBytes(t, ed.Private.Public())))
			}, want: ErrAlgorithm},
		{name: "an HS256 token keyed with the RS256 public key bytes is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "HS256", "kid": rs.ID}, edgeClaimsMap(),
					hmacSHA256(publicKeyBytes(t, rs.Private.Public())))
			}, want: ErrAlgorithm},
		{name: "an ES256 token whose kid names the EdDSA key is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "ES256", "kid": ed.ID}, edgeClaimsMap(), es256Sign(t, otherEC))
			}, want: ErrAlgorithm},
		{name: "an RS256 token whose kid names the ES256 key is refused",
			token: func(t *testing.T) string {
				return craft(t, map[string]any{"alg": "RS256", "kid": es.ID}, edgeClaimsMap(), signWith(t, rs))
			}, want: ErrAlgorithm},
		{name: "a token with a tampered payload is refused",
			token: func(t *testing.T) string {
				good := signed(ed, edgeClaimsMap())(t)
				parts := strings.Split(good, ".")
				forged := craft(t, map[string]any{}, claimsWith(func(m map[string]any) { m["sub"] = "mallory" }), nil)
				parts[1] = strings.Split(forged, ".")[1]
				return strings.Join(parts, ".")
			}, want: ErrBadSignature},
		{name: "a token with a tampered signature is refused",
			token: func(t *testing.T) string {
				good := []byte(minted(es)(t))
				i := strings.LastIndexByte(string(good), '.') + 5
				if good[i] == 'A' {
					good[i] = 'B'
				} else {
					good[i] = 'A'
				}
				return string(good)
			}, want: ErrBadSignature},
		{name: "an EdDSA token whose signature is spelt in non-canonical base64 is refused",
			token: func(t *testing.T) string { return nonCanonical(t, minted(ed)(t)) }, want: ErrMalformed},
		{name: "an ES256 token whose signature is spelt in non-canonical base64 is refused",
			token: func(t *testing.T) string { return nonCanonical(t, minted(es)(t)) }, want: ErrMalformed},
		{name: "a token with a line break inside its signature is refused",
			token: func(t *testing.T) string {
				tok := minted(ed)(t)
				return tok[:len(tok)-4] + "\n" + tok[len(tok)-4:]
			}, want: ErrMalformed},
		{name: "a token without exp is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { delete(m, "exp") })), want: ErrMissingClaim},
		{name: "a token without iat is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { delete(m, "iat") })), want: ErrMissingClaim},
		{name: "a token without sub is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { delete(m, "sub") })), want: ErrMissingClaim},
		{name: "a token longer than MaxSize is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { m["pad"] = strings.Repeat("x", DefaultMaxTokenSize) })), want: ErrTooLarge},
		{name: "a token living longer than MaxAge is refused",
			token: minted(ed), maxAge: 5 * time.Minute, want: ErrLifetime},
		{name: "a token living exactly MaxAge is accepted",
			token: minted(ed), maxAge: 10 * time.Minute},
		{name: "a token with a lower-case method in its grant is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { m["sip"] = map[string]any{"methods": []string{"invite"}} })), want: ErrMalformed},
		{name: "a token with a bad cidr in its grant is refused",
			token: signed(ed, claimsWith(func(m map[string]any) {
				m["sip"] = map[string]any{"methods": []string{"INVITE"}, "cidr": []string{"10.0.0.0/33"}}
			})), want: ErrMalformed},
		{name: "a token with a bad dial pattern in its grant is refused",
			token: signed(ed, claimsWith(func(m map[string]any) {
				m["sip"] = map[string]any{"methods": []string{"INVITE"}, "dial": map[string]any{"allow": []string{"+44**"}}}
			})), want: ErrMalformed},
		{name: "a token whose grant is not an object is refused",
			token: signed(ed, claimsWith(func(m map[string]any) { m["sip"] = "everything" })), want: ErrMalformed},
		{name: "a token with two parts is refused",
			token: func(t *testing.T) string { return "eyJhbGciOiJFZERTQSJ9.e30" }, want: ErrMalformed},
		{name: "a token that is not base64 is refused",
			token: func(t *testing.T) string { return "!!!.???.###" }, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			v := &EdgeVerifier{
				Keys:     keys,
				Issuer:   "https://issuer.example",
				Audience: "sip:trunk.example.net",
				Leeway:   tt.leeway,
				MaxAge:   tt.maxAge,
				Now:      clock(now),
			}
			claims, err := v.Verify(tt.token(t))
			wantErr(t, err, tt.want)
			if tt.want == nil {
				if claims.Subject != "alice" || claims.CID != "acme" || !slices.Equal(claims.SIP.Methods, []string{"REGISTER", "INVITE"}) {
					t.Fatalf("claims = %+v", claims)
				}
			}
		})
	}
}

func TestMintEdgeTokenRefusesKeysThatMayNotSign(t *testing.T) {
	ed := testKey(t, AlgEdDSA)
	for _, state := range []KeyState{KeyNext, KeyRetired} {
		k := *ed
		k.State = state
		if _, err := MintEdgeToken(&k, validEdgeClaims()); !isErr(err, ErrUnknownKey) {
			t.Errorf("mint with a %s key: %v, want ErrUnknownKey", state, err)
		}
	}
	c := validEdgeClaims()
	c.ID = ""
	if _, err := MintEdgeToken(ed, c); !isErr(err, ErrMissingClaim) {
		t.Errorf("mint without jti: %v, want ErrMissingClaim", err)
	}
}
