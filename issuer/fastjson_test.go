package issuer

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTokenResponseEncodesAsEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		resp TokenResponse
	}{
		{"a plain answer encodes the same", TokenResponse{
			AccessToken: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2ln", TokenType: "Bearer", ExpiresIn: 600,
			SIP: SIPInfo{URI: "sip:alice@acme.example", Realm: "acme.example", Websocket: []string{"wss://edge.example/ws"}},
		}},
		{"an empty websocket list stays an empty array", TokenResponse{TokenType: "Bearer", SIP: SIPInfo{Websocket: []string{}}}},
		{"a nil websocket list is null", TokenResponse{TokenType: "Bearer"}},
		{"characters encoding/json escapes are escaped the same", TokenResponse{
			AccessToken: "a<b>c&d\"e\\f\x01g", TokenType: "Bearer",
			SIP: SIPInfo{URI: "sip:a&b=c@acme.example", Realm: "réalm\u2028", Websocket: []string{"wss://e/<ws>", "\xff"}},
		}},
		{"the token type of an exchange, ephemeral and ICE servers encode the same", TokenResponse{
			AccessToken: "t", TokenType: "Bearer", ExpiresIn: 1, IssuedTokenType: TokenTypeAccess,
			SIP:        SIPInfo{URI: "sip:u@d", Realm: "d", Websocket: []string{"wss://a", "wss://b"}},
			Ephemeral:  &Ephemeral{Username: "1700000000:u@d", Password: "cGFzcw==", ExpiresAt: 1700000000},
			ICEServers: []ICEServer{{URLs: []string{"turn:t.example:3478?transport=udp", "turns:t.example:5349"}, Username: "1:u", Credential: "x/y+z="}, {Username: "2:u"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(&tt.resp)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.resp.appendJSON(nil); string(got) != string(want) {
				t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestAssertionBodyFastPath(t *testing.T) {
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"a compact assertion body is recognised", `{"assertion":"aa.bb.cc"}`, true},
		{"surrounding whitespace is allowed", " \n{\"assertion\":\"a-b_c.d\"}\r\n", true},
		{"an empty assertion is recognised", `{"assertion":""}`, true},
		{"inner whitespace goes to the decoder", `{ "assertion": "a.b.c" }`, false},
		{"an escape goes to the decoder", `{"assertion":"a\u002eb"}`, false},
		{"a second field goes to the decoder", `{"assertion":"a.b.c","ttl":5}`, false},
		{"a quote in the value goes to the decoder", `{"assertion":"a"b"}`, false},
		{"trailing data goes to the decoder", `{"assertion":"a.b.c"}{}`, false},
		{"another field name goes to the decoder", `{"Assertion":"a.b.c"}`, false},
		{"a truncated body goes to the decoder", `{"assertion":"a.b.c"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseAssertionBody([]byte(tt.body))
			if ok != tt.ok {
				t.Fatalf("recognised = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			var tb tokenBody
			if err := decodeJSON([]byte(tt.body), &tb); err != nil {
				t.Fatalf("the strict decoder refuses what the fast path accepts: %v", err)
			}
			if want := (tokenBody{Assertion: tb.Assertion}); tb != want || got != tb.Assertion {
				t.Errorf("fast path %q, decoder %+v", got, tb)
			}
		})
	}
}

// FuzzAssertionBodyFastPath checks that the fast path accepts only bodies
// the strict decoder reads the same way.
func FuzzAssertionBodyFastPath(f *testing.F) {
	f.Add([]byte(`{"assertion":"aa.bb.cc"}`))
	f.Add([]byte(`{"assertion":"a"}` + "\n"))
	f.Add([]byte(`{"assertion":"a\"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := parseAssertionBody(body)
		if !ok {
			return
		}
		var tb tokenBody
		if err := decodeJSON(body, &tb); err != nil {
			t.Fatalf("the strict decoder refuses %q: %v", body, err)
		}
		if tb.Assertion != got || tb != (tokenBody{Assertion: got}) {
			t.Fatalf("fast path %q, decoder %+v", got, tb)
		}
	})
}

// FuzzJSONString checks appendJSONString against encoding/json.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a<b", "\u2028", "\xff", `"\`, "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// Every byte value, alone in a string, encodes as encoding/json encodes
// it, and a body with it in the assertion takes the fast path exactly when
// it is a base64url character or a dot.
func TestFastJSONEveryByte(t *testing.T) {
	const jws = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for c := range 256 {
		s := "a" + string([]byte{byte(c)})
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("byte %#x: appendJSONString = %s, encoding/json %s", c, got, want)
		}
		_, ok := parseAssertionBody([]byte(`{"assertion":"` + s + `"}`))
		if wantOK := strings.IndexByte(jws, byte(c)) >= 0; ok != wantOK {
			t.Errorf("byte %#x: fast path %v, want %v", c, ok, wantOK)
		}
	}
}
