package chain

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// SIPGrant is the "sip" claim of an edge token: what its holder may do on
// the edge. The issuer always writes the effective grant; an absent (nil)
// Dial or CIDR means no restriction of that kind, while an empty but
// present list allows nothing.
type SIPGrant struct {
	// AOR is the address of record the holder registers and calls as.
	AOR string `json:"aor,omitempty"`
	// Methods the holder may send out of dialog; always present in tokens.
	Methods []string `json:"methods"`
	// Dial restricts the Request-URI of out-of-dialog INVITE and MESSAGE.
	Dial *DialRules `json:"dial,omitzero"`
	// CIDR binds the token to source addresses.
	CIDR []string `json:"cidr,omitzero"`
	// Headers are profile data the edge adds to requests it forwards.
	Headers map[string]string `json:"headers,omitempty"`
}

// DialRules are destination patterns. A pattern is an E.164 number ("+44*")
// or a SIP URI ("sip:*@acme.example"); "*" matches any run of characters
// (within the user part for SIP URIs). Deny wins over allow. A nil Allow
// allows every destination not denied; an empty Allow allows none.
type DialRules struct {
	Allow []string `json:"allow,omitzero"`
	Deny  []string `json:"deny,omitempty"`
}

// Validate reports a grant whose patterns or prefixes cannot be used.
func (g *SIPGrant) Validate() error {
	for _, m := range g.Methods {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t\r\n") {
			return fmt.Errorf("grant method %q: %w", m, ErrMalformed)
		}
	}
	if g.Dial != nil {
		for _, list := range [2][]string{g.Dial.Allow, g.Dial.Deny} {
			for _, p := range list {
				if _, err := parsePattern(p); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range g.CIDR {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fmt.Errorf("grant cidr %q: %w", c, ErrMalformed)
		}
	}
	for k, v := range g.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("grant header %q: %w", k, ErrMalformed)
		}
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Narrow returns base restricted by req: methods intersected, dial allow
// intersected and deny united, CIDR intersected. Headers and AOR come from
// base only. The result never allows anything base does not; a nil req
// returns a copy of base.
func Narrow(base SIPGrant, req *SIPGrant) (SIPGrant, error) {
	out := SIPGrant{
		AOR:     base.AOR,
		Methods: slices.Clone(base.Methods),
		CIDR:    slices.Clone(base.CIDR),
		Headers: base.Headers,
	}
	if out.Methods == nil {
		out.Methods = []string{}
	}
	if base.Dial != nil {
		out.Dial = &DialRules{Allow: slices.Clone(base.Dial.Allow), Deny: slices.Clone(base.Dial.Deny)}
	}
	if req == nil {
		return out, nil
	}
	if err := req.Validate(); err != nil {
		return SIPGrant{}, fmt.Errorf("requested grant: %w", err)
	}
	if req.Methods != nil {
		out.Methods = slices.DeleteFunc(out.Methods, func(m string) bool { return !slices.Contains(req.Methods, m) })
	}
	if req.Dial != nil {
		if out.Dial == nil {
			out.Dial = &DialRules{}
		}
		out.Dial.Allow = intersectPatterns(out.Dial.Allow, req.Dial.Allow)
		for _, d := range req.Dial.Deny {
			if !slices.Contains(out.Dial.Deny, d) {
				out.Dial.Deny = append(out.Dial.Deny, d)
			}
		}
	}
	if req.CIDR != nil {
		out.CIDR = intersectPrefixes(out.CIDR, req.CIDR)
	}
	return out, nil
}

// intersectPatterns keeps each pattern of one list that is contained in a
// pattern of the other. nil means "everything".
func intersectPatterns(a, b []string) []string {
	if a == nil {
		return slices.Clone(b)
	}
	if b == nil {
		return slices.Clone(a)
	}
	out := []string{}
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, x := range a {
		px, _ := parsePattern(x)
		for _, y := range b {
			py, _ := parsePattern(y)
			switch {
			case px.within(py):
				add(x)
			case py.within(px):
				add(y)
			}
		}
	}
	return out
}

func intersectPrefixes(a, b []string) []string {
	if a == nil {
		return slices.Clone(b)
	}
	if b == nil {
		return slices.Clone(a)
	}
	out := []string{}
	for _, x := range a {
		px, err := netip.ParsePrefix(x)
		if err != nil {
			continue
		}
		for _, y := range b {
			py, err := netip.ParsePrefix(y)
			if err != nil {
				continue
			}
			var keep netip.Prefix
			switch {
			case px.Bits() >= py.Bits() && py.Contains(px.Addr()):
				keep = px
			case py.Bits() >= px.Bits() && px.Contains(py.Addr()):
				keep = py
			default:
				continue
			}
			if s := keep.Masked().String(); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// AllowsMethod reports whether the grant lets its holder send method.
func (g *SIPGrant) AllowsMethod(method string) bool {
	return slices.Contains(g.Methods, method)
}

// AllowsSource reports whether addr lies in the grant's CIDR list.
func (g *SIPGrant) AllowsSource(addr netip.Addr) bool {
	if g.CIDR == nil {
		return true
	}
	addr = addr.Unmap()
	for _, c := range g.CIDR {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// AllowsDestination reports whether the grant's dial rules let its holder
// reach the Request-URI uri (sip:, sips: or tel:). Numbers are compared in
// normalised E.164 form, so "tel:+44-20-7946-0000" and
// "sip:+442079460000@host;user=phone" are the same destination.
//
// A number written without "+" may mean more than one thing to the trunk:
// the digits as written, or the E.164 number that an international prefix
// (00, 011) or a global phone-context makes of them. A deny rule matching
// any of those readings refuses the destination, and a number is allowed
// only when every reading is (or its SIP URI matches a URI pattern).
func (g *SIPGrant) AllowsDestination(uri string) bool {
	if g.Dial == nil {
		return true
	}
	dest, ok := parseDestination(uri)
	if !ok {
		return false
	}
	for _, d := range g.Dial.Deny {
		if p, ok := parsePatternOK(d); ok && (p.matchesURI(dest) || p.matchesAnyNumber(dest)) {
			return false
		}
	}
	if g.Dial.Allow == nil {
		return true
	}
	var allow []pattern
	for _, a := range g.Dial.Allow {
		if p, ok := parsePatternOK(a); ok {
			if p.matchesURI(dest) {
				return true
			}
			allow = append(allow, p)
		}
	}
	if len(dest.numbers) == 0 {
		return false
	}
	for _, n := range dest.numbers {
		if !slices.ContainsFunc(allow, func(p pattern) bool { return !p.isURI && p.match(n) }) {
			return false
		}
	}
	return true
}

// destination is a Request-URI in comparable forms.
type destination struct {
	numbers []string // readings of a number (see AllowsDestination); nil if not a number
	uri     string   // "sip:user@host", lower-case scheme and host; "" for tel:
}

// pattern is a dial pattern: a prefix, whether a '*' follows, and a suffix.
type pattern struct {
	isURI          bool
	prefix, suffix string
	star           bool
}

func parsePattern(s string) (pattern, error) {
	p, ok := parsePatternOK(s)
	if !ok {
		return pattern{}, fmt.Errorf("dial pattern %q: %w", s, ErrMalformed)
	}
	return p, nil
}

// parsePatternOK is parsePattern without building an error, which edge
// verification would otherwise pay for every pattern of every token.
func parsePatternOK(s string) (pattern, bool) {
	if s == "" || strings.Count(s, "*") > 1 || strings.ContainsAny(s, " \t\r\n") {
		return pattern{}, false
	}
	var p pattern
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "sip:") || strings.HasPrefix(lower, "sips:"):
		p.isURI = true
		at := strings.LastIndexByte(s, '@')
		if at < 0 || strings.Contains(s[at:], "*") {
			return pattern{}, false
		}
		s = "sip:" + s[strings.IndexByte(s, ':')+1:at] + strings.ToLower(s[at:])
	case strings.HasPrefix(lower, "tel:"):
		s = normalizeNumber(s[4:])
	case s == "*":
	default:
		s = normalizeNumber(s)
		if s == "" || s == "+" {
			return pattern{}, false
		}
	}
	if i := strings.IndexByte(s, '*'); i >= 0 {
		p.prefix, p.suffix, p.star = s[:i], s[i+1:], true
		if !p.isURI && p.suffix != "" {
			return pattern{}, false // numbers take a suffix wildcard only
		}
	} else {
		p.prefix = s
	}
	return p, true
}

// matchesURI reports whether a URI pattern (or the bare "*") matches the
// destination's SIP URI.
func (p pattern) matchesURI(d destination) bool {
	return d.uri != "" && (p.isURI || p.prefix == "" && p.star) && p.match(d.uri)
}

// matchesAnyNumber reports whether a number pattern matches any reading of
// the destination's number.
func (p pattern) matchesAnyNumber(d destination) bool {
	return !p.isURI && slices.ContainsFunc(d.numbers, p.match)
}

func (p pattern) match(s string) bool {
	if !p.star {
		return s == p.prefix
	}
	if len(s) < len(p.prefix)+len(p.suffix) || !strings.HasPrefix(s, p.prefix) || !strings.HasSuffix(s, p.suffix) {
		return false
	}
	mid := s[len(p.prefix) : len(s)-len(p.suffix)]
	return !p.isURI || !strings.ContainsAny(mid, "@:")
}

// within reports whether every destination p matches is matched by q.
func (p pattern) within(q pattern) bool {
	if p.isURI != q.isURI && !(q.star && q.prefix == "" && q.suffix == "") {
		return false
	}
	if !p.star {
		return q.match(p.prefix)
	}
	return q.star && strings.HasPrefix(p.prefix, q.prefix) && strings.HasSuffix(p.suffix, q.suffix)
}

// normalizeNumber removes visual separators (RFC 3966) from a number.
func normalizeNumber(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '*', c == '#':
			b.WriteByte(c)
		case c == '+' && b.Len() == 0:
			b.WriteByte(c)
		case c == '-' || c == '.' || c == '(' || c == ')' || c == ' ':
		default:
			return ""
		}
	}
	return b.String()
}

// numberForms returns the readings of dialled digits with the parameters of
// their telephone-subscriber (RFC 3966): the digits without visual
// separators and, when they carry no "+", the E.164 number made by a global
// phone-context or by the international prefixes 00 and 011. It returns nil
// when digits is not a number.
func numberForms(digits, params string) []string {
	n := normalizeNumber(digits)
	if n == "" || n == "+" || strings.ContainsAny(n, "*#") {
		return nil
	}
	forms := []string{n}
	if n[0] == '+' {
		return forms
	}
	for _, p := range strings.Split(params, ";") {
		if k, v, ok := strings.Cut(p, "="); ok && strings.EqualFold(k, "phone-context") {
			if ctx := normalizeNumber(v); strings.HasPrefix(ctx, "+") && !strings.ContainsAny(ctx, "*#") {
				forms = append(forms, ctx+n)
			}
		}
	}
	for _, idd := range [...]string{"00", "011"} {
		if len(n) > len(idd) && strings.HasPrefix(n, idd) {
			forms = append(forms, "+"+n[len(idd):])
		}
	}
	return forms
}

func parseDestination(raw string) (destination, bool) {
	s := strings.TrimSpace(raw)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return destination{}, false
	}
	scheme, rest := strings.ToLower(s[:colon]), s[colon+1:]
	switch scheme {
	case "tel":
		num, params, _ := strings.Cut(rest, ";")
		forms := numberForms(num, params)
		if forms == nil {
			return destination{}, false
		}
		return destination{numbers: forms}, true
	case "sip", "sips":
	default:
		return destination{}, false
	}
	if i := strings.IndexAny(rest, "?>"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return destination{}, false
	}
	user, host := rest[:at], rest[at+1:]
	if i := strings.IndexByte(user, ':'); i >= 0 {
		user = user[:i] // password part
	}
	// Unescape first: a trunk may read an escaped ";" as a parameter too.
	user, err := url.PathUnescape(user)
	if err != nil {
		return destination{}, false
	}
	user, userParams, _ := strings.Cut(user, ";") // parameters of a telephone-subscriber
	if user == "" || strings.ContainsAny(user, "@:\x00") {
		return destination{}, false
	}
	if i := strings.IndexByte(host, ';'); i >= 0 {
		host = host[:i]
	}
	if h := host; strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			host = h[:i+1]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if host == "" {
		return destination{}, false
	}
	return destination{
		uri:     "sip:" + user + "@" + strings.ToLower(host),
		numbers: numberForms(user, userParams),
	}, true
}
