package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Customer is a provisioned customer and its policy (SPEC §2.4).
type Customer = store.Customer

// IdP is an OpenID Connect provider a customer trusts.
type IdP = store.IdP

// Duration is a lifetime written in JSON as seconds (or read from "10m").
type Duration = store.Duration

// AuditEntry is one record of the audit log.
type AuditEntry = store.AuditEntry

// DefaultMethods are a customer's methods when its policy names none.
var DefaultMethods = []string{"REGISTER", "INVITE", "MESSAGE"}

type actorKey struct{}

// WithActor names who makes the provisioning changes done with ctx, for
// the audit log ("admin", "admin@203.0.113.7", "demo").
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

func actorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "api"
}

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	domainPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
)

// CheckAdminToken reports whether token is the admin token, in constant time.
func (i *Issuer) CheckAdminToken(token string) bool {
	a := sha256.Sum256([]byte(token))
	b := sha256.Sum256(i.cfg.AdminToken)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && token != ""
}

func validateCustomer(c *Customer) error {
	if !idPattern.MatchString(c.ID) {
		return invalidRequest("customer id %q: lower-case letters, digits, '.', '_', '-', at most 64", c.ID)
	}
	if !domainPattern.MatchString(c.Domain) {
		return invalidRequest("customer domain %q is not a host name", c.Domain)
	}
	if len(c.Name) > 200 {
		return invalidRequest("customer name longer than 200 characters")
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return invalidRequest("origin %q: want scheme://host[:port]", o)
		}
	}
	if c.MaxTTL < 0 {
		return invalidRequest("max_ttl must not be negative")
	}
	if c.RateLimit < 0 {
		return invalidRequest("rate_limit must not be negative")
	}
	if _, err := chain.ParseHash(c.LegacyHash); err != nil {
		return invalidRequest("legacy_hash %q: want sha1, sha256, sha384 or sha512", c.LegacyHash)
	}
	if c.SIP.Methods == nil {
		c.SIP.Methods = slices.Clone(DefaultMethods)
	}
	c.SIP.AOR = ""
	if err := c.SIP.Validate(); err != nil {
		return invalidRequest("sip: %v", err)
	}
	for n, p := range c.IdPs {
		u, err := url.Parse(p.Issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalidRequest("idps[%d].issuer %q: want an http(s) URL", n, p.Issuer)
		}
		if p.JWKSURI != "" {
			if u, err := url.Parse(p.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return invalidRequest("idps[%d].jwks_uri %q: want an http(s) URL", n, p.JWKSURI)
			}
		}
		if p.Audience == "" {
			return invalidRequest("idps[%d].audience is required", n)
		}
		if (p.Claim == "" || p.Claim == "email") && len(p.Domains) == 0 {
			// The local part of the address becomes the SIP user: without a
			// domain list, alice@anywhere would be the customer's alice.
			return invalidRequest("idps[%d].domains is required with the email claim", n)
		}
		for _, d := range p.Domains {
			if !domainPattern.MatchString(d) {
				return invalidRequest("idps[%d].domains: %q is not a domain", n, d)
			}
		}
	}
	return nil
}

// CreateCustomer provisions c; ErrConflict if its id exists.
func (i *Issuer) CreateCustomer(ctx context.Context, c Customer) (Customer, error) {
	if err := validateCustomer(&c); err != nil {
		return Customer{}, err
	}
	i.wmu.Lock()
	defer i.wmu.Unlock()
	now := i.now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	a := &store.AuditEntry{Time: now, Actor: actorOf(ctx), Action: "customer.create", Target: c.ID}
	if err := i.store.CreateCustomer(ctx, c, a); err != nil {
		return Customer{}, err
	}
	st := i.state.Load().clone()
	st.customers[c.ID] = &c
	if err := i.publish(st); err != nil {
		return Customer{}, err
	}
	return c, nil
}

func (i *Issuer) publish(st *state) error {
	if err := st.derive(); err != nil {
		return err
	}
	i.state.Store(st)
	return nil
}

// Customer returns a customer; ErrNotFound if none.
func (i *Issuer) Customer(id string) (Customer, error) {
	c, ok := i.state.Load().customers[id]
	if !ok {
		return Customer{}, fmt.Errorf("customer %q: %w", id, ErrNotFound)
	}
	return *c, nil
}

// Customers lists the customers in id order.
func (i *Issuer) Customers() []Customer {
	st := i.state.Load()
	out := make([]Customer, 0, len(st.customers))
	for _, c := range st.customers {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Customer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// CustomerPatch changes some fields of a customer; nil fields stay.
type CustomerPatch struct {
	Name       *string         `json:"name"`
	Domain     *string         `json:"domain"`
	Origins    *[]string       `json:"origins"`
	MaxTTL     *Duration       `json:"max_ttl"`
	SIP        *chain.SIPGrant `json:"sip"`
	IdPs       *[]IdP          `json:"idps"`
	RateLimit  *int            `json:"rate_limit"`
	LegacyHash *string         `json:"legacy_hash"`
}

// UpdateCustomer applies p to customer id.
func (i *Issuer) UpdateCustomer(ctx context.Context, id string, p CustomerPatch) (Customer, error) {
	i.wmu.Lock()
	defer i.wmu.Unlock()
	old, ok := i.state.Load().customers[id]
	if !ok {
		return Customer{}, fmt.Errorf("customer %q: %w", id, ErrNotFound)
	}
	c := *old
	var changed []string
	set := func(name string, apply func()) {
		apply()
		changed = append(changed, name)
	}
	if p.Name != nil {
		set("name", func() { c.Name = *p.Name })
	}
	if p.Domain != nil {
		set("domain", func() { c.Domain = *p.Domain })
	}
	if p.Origins != nil {
		set("origins", func() { c.Origins = *p.Origins })
	}
	if p.MaxTTL != nil {
		set("max_ttl", func() { c.MaxTTL = *p.MaxTTL })
	}
	if p.SIP != nil {
		set("sip", func() { c.SIP = *p.SIP })
	}
	if p.IdPs != nil {
		set("idps", func() { c.IdPs = *p.IdPs })
	}
	if p.RateLimit != nil {
		set("rate_limit", func() { c.RateLimit = *p.RateLimit })
	}
	if p.LegacyHash != nil {
		set("legacy_hash", func() { c.LegacyHash = *p.LegacyHash })
	}
	if err := validateCustomer(&c); err != nil {
		return Customer{}, err
	}
	now := i.now().UTC()
	c.UpdatedAt = now
	a := &store.AuditEntry{Time: now, Actor: actorOf(ctx), Action: "customer.update", Target: id, Detail: strings.Join(changed, ",")}
	if err := i.store.UpdateCustomer(ctx, c, a); err != nil {
		return Customer{}, err
	}
	st := i.state.Load().clone()
	st.customers[id] = &c
	if err := i.publish(st); err != nil {
		return Customer{}, err
	}
	return c, nil
}

// DeleteCustomer removes a customer and its secrets.
func (i *Issuer) DeleteCustomer(ctx context.Context, id string) error {
	i.wmu.Lock()
	defer i.wmu.Unlock()
	a := &store.AuditEntry{Time: i.now().UTC(), Actor: actorOf(ctx), Action: "customer.delete", Target: id}
	if err := i.store.DeleteCustomer(ctx, id, a); err != nil {
		return err
	}
	st := i.state.Load().clone()
	delete(st.customers, id)
	for sid, e := range st.secrets {
		if e.secret.Customer == id {
			delete(st.secrets, sid)
		}
	}
	return i.publish(st)
}

// SecretInfo describes a customer secret without its value.
type SecretInfo struct {
	ID        string     `json:"id"`
	Customer  string     `json:"customer"`
	NotBefore time.Time  `json:"not_before"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// NewSecret is a created secret: the only time its value is shown.
type NewSecret struct {
	SecretInfo
	// Secret is the shared secret; the HMAC key of assertions is its bytes.
	Secret string `json:"secret"`
}

func infoOf(m store.Secret) SecretInfo {
	si := SecretInfo{ID: m.ID, Customer: m.Customer, NotBefore: m.NotBefore, Revoked: m.Revoked, CreatedAt: m.CreatedAt}
	if !m.NotAfter.IsZero() {
		t := m.NotAfter
		si.NotAfter = &t
	}
	if !m.RevokedAt.IsZero() {
		t := m.RevokedAt
		si.RevokedAt = &t
	}
	return si
}

// CreateSecret creates a secret for customer valid from notBefore (now
// when zero) until notAfter (no end when zero), and returns it with its
// value, which is never shown again.
func (i *Issuer) CreateSecret(ctx context.Context, customer string, notBefore, notAfter time.Time) (NewSecret, error) {
	now := i.now().UTC()
	if notBefore.IsZero() {
		notBefore = now.Truncate(time.Second) // iat has whole seconds
	}
	if !notAfter.IsZero() && !notAfter.After(notBefore) {
		return NewSecret{}, invalidRequest("not_after must be after not_before")
	}
	i.wmu.Lock()
	defer i.wmu.Unlock()
	if _, ok := i.state.Load().customers[customer]; !ok {
		return NewSecret{}, fmt.Errorf("customer %q: %w", customer, ErrNotFound)
	}
	value := randomToken(32)
	s := store.Secret{ID: "sk_" + randomToken(12), Customer: customer, NotBefore: notBefore.UTC(), CreatedAt: now}
	if !notAfter.IsZero() {
		s.NotAfter = notAfter.UTC()
	}
	s.Sealed = i.sealer.seal([]byte(value), "secret/"+s.ID)
	a := &store.AuditEntry{Time: now, Actor: actorOf(ctx), Action: "secret.create", Target: customer + "/" + s.ID}
	if err := i.store.CreateSecret(ctx, s, a); err != nil {
		return NewSecret{}, err
	}
	e, err := i.openSecret(s)
	if err != nil {
		return NewSecret{}, err
	}
	st := i.state.Load().clone()
	st.secrets[s.ID] = e
	if err := i.publish(st); err != nil {
		return NewSecret{}, err
	}
	return NewSecret{SecretInfo: infoOf(e.meta), Secret: value}, nil
}

// Secrets lists a customer's secrets, newest first, without values.
func (i *Issuer) Secrets(customer string) ([]SecretInfo, error) {
	st := i.state.Load()
	if _, ok := st.customers[customer]; !ok {
		return nil, fmt.Errorf("customer %q: %w", customer, ErrNotFound)
	}
	out := []SecretInfo{}
	for _, s := range st.byCustomer[customer] {
		out = append(out, infoOf(st.secrets[s.ID].meta))
	}
	return out, nil
}

// RevokeSecret revokes a customer's secret now.
func (i *Issuer) RevokeSecret(ctx context.Context, customer, id string) (SecretInfo, error) {
	i.wmu.Lock()
	defer i.wmu.Unlock()
	e, ok := i.state.Load().secrets[id]
	if !ok || e.secret.Customer != customer {
		return SecretInfo{}, fmt.Errorf("secret %q of %q: %w", id, customer, ErrNotFound)
	}
	now := i.now().UTC()
	row := store.Secret{ID: id, Customer: customer, NotBefore: e.meta.NotBefore, NotAfter: e.meta.NotAfter,
		Revoked: true, RevokedAt: now, CreatedAt: e.meta.CreatedAt,
		Sealed: i.sealer.seal(e.secret.Value, "secret/"+id)}
	a := &store.AuditEntry{Time: now, Actor: actorOf(ctx), Action: "secret.revoke", Target: customer + "/" + id}
	if err := i.store.UpdateSecret(ctx, row, a); err != nil {
		return SecretInfo{}, err
	}
	e.meta.Revoked, e.meta.RevokedAt = true, now
	e.secret.Revoked = true
	st := i.state.Load().clone()
	st.secrets[id] = e
	if err := i.publish(st); err != nil {
		return SecretInfo{}, err
	}
	return infoOf(e.meta), nil
}

// EdgeClientInfo describes an introspection client.
type EdgeClientInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// NewEdgeClient is a created introspection client with its secret, shown
// this once.
type NewEdgeClient struct {
	EdgeClientInfo
	Secret string `json:"secret"`
}

// CreateEdgeClient creates introspection client credentials for an edge
// or SBC (HTTP Basic id:secret at /v1/introspect and /v1/revoke).
func (i *Issuer) CreateEdgeClient(ctx context.Context, name string) (NewEdgeClient, error) {
	if len(name) > 200 || strings.ContainsAny(name, "\r\n\x00") {
		return NewEdgeClient{}, invalidRequest("edge client name: at most 200 characters on one line")
	}
	i.wmu.Lock()
	defer i.wmu.Unlock()
	now := i.now().UTC()
	secret := randomToken(32)
	sum := sha256.Sum256([]byte(secret))
	e := store.EdgeClient{ID: "ec_" + randomToken(12), Name: name, SecretHash: sum[:], CreatedAt: now}
	a := &store.AuditEntry{Time: now, Actor: actorOf(ctx), Action: "edge.create", Target: e.ID}
	if err := i.store.CreateEdgeClient(ctx, e, a); err != nil {
		return NewEdgeClient{}, err
	}
	st := i.state.Load().clone()
	st.edges[e.ID] = e
	if err := i.publish(st); err != nil {
		return NewEdgeClient{}, err
	}
	return NewEdgeClient{EdgeClientInfo: EdgeClientInfo{ID: e.ID, Name: name, CreatedAt: now}, Secret: secret}, nil
}

// EdgeClients lists the introspection clients.
func (i *Issuer) EdgeClients() []EdgeClientInfo {
	st := i.state.Load()
	out := []EdgeClientInfo{}
	for _, e := range st.edges {
		out = append(out, EdgeClientInfo{ID: e.ID, Name: e.Name, CreatedAt: e.CreatedAt})
	}
	slices.SortFunc(out, func(a, b EdgeClientInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// DeleteEdgeClient removes an introspection client.
func (i *Issuer) DeleteEdgeClient(ctx context.Context, id string) error {
	i.wmu.Lock()
	defer i.wmu.Unlock()
	a := &store.AuditEntry{Time: i.now().UTC(), Actor: actorOf(ctx), Action: "edge.delete", Target: id}
	if err := i.store.DeleteEdgeClient(ctx, id, a); err != nil {
		return err
	}
	st := i.state.Load().clone()
	delete(st.edges, id)
	return i.publish(st)
}

// checkEdgeClient authenticates an introspection client in constant time.
func (i *Issuer) checkEdgeClient(id, secret string) bool {
	e, ok := i.state.Load().edges[id]
	sum := sha256.Sum256([]byte(secret))
	want := e.SecretHash
	if !ok {
		want = make([]byte, sha256.Size)
	}
	return subtle.ConstantTimeCompare(sum[:], want) == 1 && ok
}

// Audit lists audit entries after seq after, at most limit (100 when <= 0).
func (i *Issuer) Audit(ctx context.Context, after uint64, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	out, err := i.store.Audit(ctx, after, limit)
	if out == nil {
		out = []AuditEntry{}
	}
	return out, err
}
