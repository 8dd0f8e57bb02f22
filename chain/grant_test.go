package chain

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func TestNarrow(t *testing.T) {
	base := SIPGrant{
		AOR:     "sip:alice@acme.example",
		Methods: []string{"REGISTER", "INVITE", "MESSAGE"},
		Dial:    &DialRules{Allow: []string{"+44*", "sip:*@acme.example"}, Deny: []string{"+449*"}},
		CIDR:    []string{"10.0.0.0/8", "2001:db8::/32"},
		Headers: map[string]string{"X-Tier": "gold"},
	}
	tests := []struct {
		name string
		base SIPGrant
		req  *SIPGrant
		want SIPGrant
	}{
		{name: "a nil request returns a copy of the base", base: base, req: nil, want: base},
		{name: "an empty request changes nothing", base: base, req: &SIPGrant{}, want: base},
		{name: "methods are intersected",
			base: base, req: &SIPGrant{Methods: []string{"INVITE", "SUBSCRIBE"}},
			want: SIPGrant{AOR: base.AOR, Methods: []string{"INVITE"}, Dial: base.Dial, CIDR: base.CIDR, Headers: base.Headers}},
		{name: "an empty method list leaves no method",
			base: base, req: &SIPGrant{Methods: []string{}},
			want: SIPGrant{AOR: base.AOR, Methods: []string{}, Dial: base.Dial, CIDR: base.CIDR, Headers: base.Headers}},
		{name: "a narrower dial pattern inside a base pattern is kept and deny lists are united",
			base: base, req: &SIPGrant{Dial: &DialRules{Allow: []string{"+4420*", "sip:bob@acme.example", "+33*"}, Deny: []string{"+44209*"}}},
			want: SIPGrant{AOR: base.AOR, Methods: base.Methods, CIDR: base.CIDR, Headers: base.Headers,
				Dial: &DialRules{Allow: []string{"+4420*", "sip:bob@acme.example"}, Deny: []string{"+449*", "+44209*"}}}},
		{name: "a wider dial pattern is cut to the base pattern it contains",
			base: base, req: &SIPGrant{Dial: &DialRules{Allow: []string{"*"}}},
			want: SIPGrant{AOR: base.AOR, Methods: base.Methods, CIDR: base.CIDR, Headers: base.Headers,
				Dial: &DialRules{Allow: []string{"+44*", "sip:*@acme.example"}, Deny: []string{"+449*"}}}},
		{name: "a base without dial rules takes the request's",
			base: SIPGrant{Methods: []string{"INVITE"}}, req: &SIPGrant{Dial: &DialRules{Allow: []string{"+1*"}, Deny: []string{"+1900*"}}},
			want: SIPGrant{Methods: []string{"INVITE"}, Dial: &DialRules{Allow: []string{"+1*"}, Deny: []string{"+1900*"}}}},
		{name: "disjoint dial patterns leave an empty allow list",
			base: base, req: &SIPGrant{Dial: &DialRules{Allow: []string{"+33*", "sip:*@globex.example"}}},
			want: SIPGrant{AOR: base.AOR, Methods: base.Methods, CIDR: base.CIDR, Headers: base.Headers,
				Dial: &DialRules{Allow: []string{}, Deny: []string{"+449*"}}}},
		{name: "cidr prefixes are intersected for v4 and v6",
			base: base, req: &SIPGrant{CIDR: []string{"10.1.0.0/16", "2001:db8:1::/48", "0.0.0.0/0"}},
			want: SIPGrant{AOR: base.AOR, Methods: base.Methods, Dial: base.Dial, Headers: base.Headers,
				CIDR: []string{"10.1.0.0/16", "10.0.0.0/8", "2001:db8:1::/48"}}},
		{name: "disjoint cidr prefixes leave an empty list",
			base: base, req: &SIPGrant{CIDR: []string{"192.0.2.0/24", "2001:db9::/32"}},
			want: SIPGrant{AOR: base.AOR, Methods: base.Methods, Dial: base.Dial, Headers: base.Headers, CIDR: []string{}}},
		{name: "a base without cidr takes the request's",
			base: SIPGrant{Methods: []string{"INVITE"}}, req: &SIPGrant{CIDR: []string{"192.0.2.7/32"}},
			want: SIPGrant{Methods: []string{"INVITE"}, CIDR: []string{"192.0.2.7/32"}}},
		{name: "headers and aor are never taken from the request",
			base: base, req: &SIPGrant{AOR: "sip:root@acme.example", Headers: map[string]string{"X-Tier": "platinum", "X-Admin": "1"}},
			want: base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Narrow(tt.base, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Narrow =\n%+v\nwant\n%+v", jsonString(t, got), jsonString(t, tt.want))
			}
		})
	}
}

func TestNarrowDoesNotAliasTheBase(t *testing.T) {
	base := SIPGrant{Methods: []string{"INVITE", "MESSAGE"}, Dial: &DialRules{Allow: []string{"+44*"}}, CIDR: []string{"10.0.0.0/8"}}
	got, err := Narrow(base, &SIPGrant{Methods: []string{"MESSAGE"}, Dial: &DialRules{Deny: []string{"+449*"}}})
	if err != nil {
		t.Fatal(err)
	}
	got.CIDR[0] = "0.0.0.0/0"
	if base.Methods[0] != "INVITE" || len(base.Dial.Deny) != 0 || base.CIDR[0] != "10.0.0.0/8" {
		t.Fatalf("Narrow changed its base: %+v", base)
	}
}

func TestNarrowRefusesAMalformedRequest(t *testing.T) {
	for name, req := range map[string]*SIPGrant{
		"a lower-case method":       {Methods: []string{"invite"}},
		"a dial pattern with two *": {Dial: &DialRules{Allow: []string{"+4*4*"}}},
		"a bad cidr":                {CIDR: []string{"10.0.0.0/40"}},
		"a header with a newline":   {Headers: map[string]string{"X-A": "1\r\nX-B: 2"}},
	} {
		t.Run("a request with "+name+" is refused", func(t *testing.T) {
			if _, err := Narrow(SIPGrant{Methods: []string{"INVITE"}}, req); !isErr(err, ErrMalformed) {
				t.Fatalf("Narrow = %v, want ErrMalformed", err)
			}
		})
	}
}

// Vocabularies of the property test: patterns, prefixes, destinations and
// sources chosen so that containment, overlap and disjointness all occur.
var (
	propMethods  = []string{"REGISTER", "INVITE", "MESSAGE", "OPTIONS", "SUBSCRIBE"}
	propPatterns = []string{"*", "+44*", "+4420*", "+442079460000", "+449*", "+33*", "+1*", "+1900*",
		"sip:*@acme.example", "sip:alice@acme.example", "sip:al*@acme.example", "sip:*@globex.example", "tel:+44-20*"}
	propPrefixes = []string{"0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "192.0.2.0/24",
		"::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db9::/32"}
	propDestinations = []string{"tel:+44-20-7946-0000", "sip:+442079460000@trunk;user=phone", "tel:+449001", "tel:+33142",
		"tel:+12125550100", "tel:+19005550100", "sip:alice@acme.example", "sip:albert@acme.example", "sip:bob@acme.example",
		"sip:eve@globex.example", "sip:x@elsewhere.example"}
	propSources = []string{"10.1.2.3", "10.1.9.9", "10.200.0.1", "192.0.2.10", "198.51.100.1", "::ffff:10.1.2.3",
		"2001:db8:1::5", "2001:db8:2::5", "2001:db9::1", "fe80::1"}
)

func randomSubset(r *rand.Rand, from []string) []string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	var out []string
	for _, s := range from {
		if r.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func randomGrant(r *rand.Rand) SIPGrant {
	g := SIPGrant{Methods: randomSubset(r, propMethods), CIDR: randomSubset(r, propPrefixes)}
	if r.IntN(4) > 0 {
		g.Dial = &DialRules{Allow: randomSubset(r, propPatterns), Deny: randomSubset(r, propPatterns)}
	}
	return g
}

// TestNarrowNeverWidens checks, over random grants with a fixed seed, that
// whatever a narrowed grant allows was allowed by the base and by the
// request alike.
func TestNarrowNeverWidens(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		base, req := randomGrant(r), randomGrant(r)
		got, err := Narrow(base, &req)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		for _, m := range propMethods {
			if got.AllowsMethod(m) && !(base.AllowsMethod(m) && (req.Methods == nil || req.AllowsMethod(m))) {
				t.Fatalf("case %d: method %s allowed after narrowing\nbase %s\nreq %s\ngot %s", i, m, jsonString(t, base), jsonString(t, req), jsonString(t, got))
			}
		}
		for _, d := range propDestinations {
			if got.AllowsDestination(d) && !(base.AllowsDestination(d) && req.AllowsDestination(d)) {
				t.Fatalf("case %d: destination %s allowed after narrowing\nbase %s\nreq %s\ngot %s", i, d, jsonString(t, base), jsonString(t, req), jsonString(t, got))
			}
		}
		for _, s := range propSources {
			a := netip.MustParseAddr(s)
			if got.AllowsSource(a) && !(base.AllowsSource(a) && req.AllowsSource(a)) {
				t.Fatalf("case %d: source %s allowed after narrowing\nbase %s\nreq %s\ngot %s", i, s, jsonString(t, base), jsonString(t, req), jsonString(t, got))
			}
		}
	}
}

func jsonString(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSIPGrantJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   SIPGrant
		json string
	}{
		{name: "absent dial and cidr stay absent",
			in:   SIPGrant{Methods: []string{"INVITE"}},
			json: `{"methods":["INVITE"]}`},
		{name: "empty allow and cidr lists stay present",
			in:   SIPGrant{Methods: []string{}, Dial: &DialRules{Allow: []string{}}, CIDR: []string{}},
			json: `{"methods":[],"dial":{"allow":[]},"cidr":[]}`},
		{name: "absent allow with a deny list stays absent",
			in:   SIPGrant{Methods: []string{"INVITE"}, Dial: &DialRules{Deny: []string{"+449*"}}},
			json: `{"methods":["INVITE"],"dial":{"deny":["+449*"]}}`},
		{name: "a full grant round-trips",
			in: SIPGrant{AOR: "sip:a@acme.example", Methods: []string{"REGISTER"}, Dial: &DialRules{Allow: []string{"+44*"}, Deny: []string{"+449*"}},
				CIDR: []string{"203.0.113.0/24"}, Headers: map[string]string{"X-Customer-Tier": "gold"}},
			json: `{"aor":"sip:a@acme.example","methods":["REGISTER"],"dial":{"allow":["+44*"],"deny":["+449*"]},"cidr":["203.0.113.0/24"],"headers":{"X-Customer-Tier":"gold"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsonString(t, tt.in); got != tt.json {
				t.Fatalf("marshal = %s, want %s", got, tt.json)
			}
			var back SIPGrant
			if err := json.Unmarshal([]byte(tt.json), &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.in) {
				t.Fatalf("unmarshal = %#v, want %#v", back, tt.in)
			}
		})
	}
}

func TestAllowsDestination(t *testing.T) {
	g := SIPGrant{Dial: &DialRules{Allow: []string{"+44*", "sip:*@acme.example"}, Deny: []string{"+449*", "sip:boss@acme.example"}}}
	tests := []struct {
		grant SIPGrant
		uri   string
		want  bool
	}{
		{g, "tel:+44-20-7946-0000", true},
		{g, "tel:+44.20.7946.0000;phone-context=example", true},
		{g, "sip:+442079460000@trunk.example.net;user=phone", true},
		{g, "sip:+44(20)79460000@trunk.example.net", true},
		{g, "sips:+44%2020%207946%200000@trunk.example.net", true},
		{g, "<sip:%2B442079460000@trunk.example.net:5060;transport=tcp>", true},
		{g, "tel:+33142685300", false},
		{g, "sip:+33142685300@trunk.example.net", false},
		{g, "tel:+449001234567", false},
		{g, "sip:+44-900-1234567@trunk.example.net", false},
		{g, "sip:alice@acme.example", true},
		{g, "sip:alice@ACME.example;transport=ws", true},
		{g, "sip:alice@acme.example:5061", true},
		{g, "sip:alice:secret@acme.example", true},
		{g, "sip:boss@acme.example", false},
		{g, "sip:b%6Fss@acme.example", false},
		{g, "sip:alice@globex.example", false},
		{g, "sip:alice@acme.example.evil.example", false},
		{g, "sip:alice%40globex.example@acme.example", false},
		{g, "tel:+44*1", false},
		{g, "mailto:alice@acme.example", false},
		{g, "sip:acme.example", false},
		{g, "garbage", false},
		{SIPGrant{}, "garbage", true},
		{SIPGrant{Dial: &DialRules{Deny: []string{"+1900*"}}}, "tel:+12125550100", true},
		{SIPGrant{Dial: &DialRules{Deny: []string{"+1900*"}}}, "tel:+1-900-555-0100", false},
		{SIPGrant{Dial: &DialRules{Allow: []string{}}}, "tel:+12125550100", false},
		// Numbers without "+" are read every way a trunk may read them.
		{SIPGrant{Dial: &DialRules{Deny: []string{"+449*"}}}, "sip:00449001234@trunk.example.net", false},
		{SIPGrant{Dial: &DialRules{Deny: []string{"+449*"}}}, "sip:011449001234@trunk.example.net;user=phone", false},
		{SIPGrant{Dial: &DialRules{Deny: []string{"+449*"}}}, "tel:9001234;phone-context=+44", false},
		{SIPGrant{Dial: &DialRules{Deny: []string{"+449*"}}}, "sip:9001234;phone-context=+44@trunk.example.net;user=phone", false},
		{SIPGrant{Dial: &DialRules{Deny: []string{"+449*"}}}, "sip:9001234%3Bphone-context=%2B44@trunk.example.net", false},
		{SIPGrant{Dial: &DialRules{Deny: []string{"+449*"}}}, "sip:00442079460000@trunk.example.net", true},
		{g, "sip:00442079460000@trunk.example.net", false}, // "00442…" as written is not "+44…"
		{SIPGrant{Dial: &DialRules{Allow: []string{"+44*", "0044*"}}}, "sip:00442079460000@trunk.example.net", true},
		{SIPGrant{Dial: &DialRules{Allow: []string{"+44*", "0044*"}}}, "sip:00332079460000@trunk.example.net", false},
		{SIPGrant{Dial: &DialRules{Allow: []string{"*"}}}, "sip:anyone@anywhere.example", true},
		{SIPGrant{Dial: &DialRules{Allow: []string{"*"}, Deny: []string{"*"}}}, "tel:+12125550100", false},
	}
	for _, tt := range tests {
		name := tt.uri + " is refused"
		if tt.want {
			name = tt.uri + " is allowed"
		}
		t.Run(name, func(t *testing.T) {
			if got := tt.grant.AllowsDestination(tt.uri); got != tt.want {
				t.Fatalf("AllowsDestination(%q) with %s = %v", tt.uri, jsonString(t, tt.grant.Dial), got)
			}
		})
	}
}

func TestAllowsSource(t *testing.T) {
	g := SIPGrant{CIDR: []string{"203.0.113.0/24", "2001:db8::/32"}}
	tests := []struct {
		grant SIPGrant
		addr  string
		want  bool
	}{
		{g, "203.0.113.7", true},
		{g, "203.0.114.7", false},
		{g, "::ffff:203.0.113.7", true},
		{g, "::ffff:198.51.100.1", false},
		{g, "2001:db8:5::1", true},
		{g, "2001:db9::1", false},
		{SIPGrant{}, "198.51.100.1", true},
		{SIPGrant{CIDR: []string{}}, "203.0.113.7", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr+" against "+jsonString(t, tt.grant.CIDR), func(t *testing.T) {
			if got := tt.grant.AllowsSource(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("AllowsSource(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func TestAllowsMethod(t *testing.T) {
	g := SIPGrant{Methods: []string{"REGISTER", "INVITE"}}
	if !g.AllowsMethod("INVITE") || g.AllowsMethod("MESSAGE") || g.AllowsMethod("invite") {
		t.Fatal("AllowsMethod does not match the method list exactly")
	}
	if slices.Contains((&SIPGrant{}).Methods, "INVITE") {
		t.Fatal("zero grant allows INVITE")
	}
}
