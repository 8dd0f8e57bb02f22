package verifier

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkpass/trunkpass/verifier/auth"
)

// Errors of the grant checks; each becomes a 403 whose reason phrase
// names it.
var (
	ErrAORMismatch = errors.New("Forbidden: AOR mismatch")
	ErrMethod      = errors.New("Forbidden: method not allowed")
	ErrDestination = errors.New("Forbidden: destination not allowed")
	ErrSource      = errors.New("Forbidden: source address not allowed")
)

// Authorize checks that id may send req from src: the AOR (To for
// REGISTER, From otherwise) is the credential's, and the method,
// destination (Request-URI of INVITE and MESSAGE) and source address are
// inside its grant.
func Authorize(req *sip.Request, id *auth.Identity, src netip.AddrPort) error {
	var uri *sip.Uri
	if req.Method == sip.REGISTER {
		if to := req.To(); to != nil {
			uri = &to.Address
		}
	} else if from := req.From(); from != nil {
		uri = &from.Address
	}
	if uri == nil || !MatchAOR(id.AOR, uri) {
		return ErrAORMismatch
	}
	g := id.Grant
	if g == nil {
		return nil
	}
	if !g.AllowsMethod(string(req.Method)) {
		return ErrMethod
	}
	if (req.Method == sip.INVITE || req.Method == sip.MESSAGE) && !g.AllowsDestination(req.Recipient.String()) {
		return ErrDestination
	}
	if !g.AllowsSource(src.Addr()) {
		return ErrSource
	}
	return nil
}

// MatchAOR reports whether uri is the address of record claim names: the
// whole AOR (user and host, host case-insensitively) when claim has a host
// ("sip:alice@acme.example" or "alice@acme.example"), the user part only
// otherwise.
func MatchAOR(claim string, uri *sip.Uri) bool {
	c := claim
	if i := strings.IndexByte(c, ':'); i >= 0 && i < 5 {
		switch strings.ToLower(c[:i]) {
		case "sip", "sips":
			c = c[i+1:]
		}
	}
	user, host, hasHost := strings.Cut(c, "@")
	if user == "" || uri.User != user {
		return false
	}
	if !hasHost {
		return true
	}
	if i := strings.IndexAny(host, ";>?"); i >= 0 {
		host = host[:i]
	}
	return strings.EqualFold(host, uri.Host)
}
