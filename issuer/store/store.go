// Package store defines the storage the issuer needs: customers, their
// sealed secrets, sealed signing keys, introspection clients, the once-only
// set of assertion jti values, revoked edge tokens and the audit log.
//
// Values that must stay secret arrive already sealed (encrypted by the
// issuer under its master key); a Store never sees them in plaintext.
// Every implementation must pass the contract suite in store/storetest.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trunkpass/trunkpass/chain"
)

// Errors of every Store, matched with errors.Is.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a record with that id already exists.
	ErrConflict = errors.New("already exists")
)

// Duration is a time.Duration that is written in JSON as whole seconds and
// read from seconds or a Go duration string ("10m").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatInt(int64(time.Duration(d)/time.Second), 10)), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("duration %q: %w", str, err)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > int64(1<<33) {
		return fmt.Errorf("duration %s: want whole seconds or a duration string", s)
	}
	*d = Duration(time.Duration(n) * time.Second)
	return nil
}

// IdP is an OpenID Connect provider a customer trusts for single sign-on.
type IdP struct {
	// Issuer is the provider's issuer URL, compared exactly with iss.
	Issuer string `json:"issuer"`
	// JWKSURI, if set, skips discovery.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Audience is the customer's client id at the provider (aud).
	Audience string `json:"audience"`
	// Claim names the user; "email" when empty (its local part is used).
	Claim string `json:"claim,omitempty"`
	// Domains are the only email domains accepted; required with the email
	// claim, whose local part becomes the SIP user. List several only when
	// they share one mailbox namespace (aliases), or two people may map to
	// one SIP user.
	Domains []string `json:"domains,omitempty"`
}

// Customer is a provisioned customer and its policy.
type Customer struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Domain  string   `json:"domain"`
	Origins []string `json:"origins"`
	// MaxTTL bounds the lifetime of the customer's edge tokens; zero means
	// the issuer's token_ttl.
	MaxTTL Duration `json:"max_ttl"`
	// SIP is the customer's default grant; requests may only narrow it.
	SIP chain.SIPGrant `json:"sip"`
	// IdPs are the OpenID Connect providers the customer trusts.
	IdPs []IdP `json:"idps"`
	// RateLimit overrides the issuer's per-customer token rate (requests
	// per second); zero keeps the issuer's value.
	RateLimit int `json:"rate_limit,omitempty"`
	// LegacyHash is the HMAC hash of legacy ephemeral assertions (sha1 when
	// empty).
	LegacyHash string    `json:"legacy_hash,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Secret is a customer secret as stored: the value sealed.
type Secret struct {
	ID        string    `json:"id"`
	Customer  string    `json:"customer"`
	Sealed    []byte    `json:"sealed"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at"`
	CreatedAt time.Time `json:"created_at"`
}

// Key is an issuer signing key as stored: the PKCS #8 private key sealed.
type Key struct {
	ID        string         `json:"id"`
	Alg       string         `json:"alg"`
	State     chain.KeyState `json:"state"`
	Sealed    []byte         `json:"sealed"`
	CreatedAt time.Time      `json:"created_at"`
	RetiredAt time.Time      `json:"retired_at"`
}

// EdgeClient is an introspection client (an edge or SBC); only a hash of
// its secret is kept.
type EdgeClient struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	SecretHash []byte    `json:"secret_hash"`
	CreatedAt  time.Time `json:"created_at"`
}

// RevokedToken is a revoked edge token, kept until it expires.
type RevokedToken struct {
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UsedJTI is an assertion id recorded as used until ExpiresAt.
type UsedJTI struct {
	ID        string
	ExpiresAt time.Time
}

// AuditEntry records one change: who, what, when.
type AuditEntry struct {
	// Seq is assigned by the store, increasing.
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
}

// Store is the issuer's storage. Mutating methods take an audit entry that
// is appended in the same transaction as the change (nil for none); a
// method that returns nil has made its change durable.
type Store interface {
	// CreateCustomer adds c; ErrConflict if its id exists.
	CreateCustomer(ctx context.Context, c Customer, a *AuditEntry) error
	// UpdateCustomer replaces the customer with c's id; ErrNotFound if none.
	UpdateCustomer(ctx context.Context, c Customer, a *AuditEntry) error
	// DeleteCustomer removes a customer and its secrets; ErrNotFound if none.
	DeleteCustomer(ctx context.Context, id string, a *AuditEntry) error
	// Customers lists every customer, ordered by id.
	Customers(ctx context.Context) ([]Customer, error)

	// CreateSecret adds s; ErrNotFound if its customer does not exist,
	// ErrConflict if its id exists.
	CreateSecret(ctx context.Context, s Secret, a *AuditEntry) error
	// UpdateSecret replaces the secret with s's id; ErrNotFound if none.
	UpdateSecret(ctx context.Context, s Secret, a *AuditEntry) error
	// Secrets lists every secret of every customer, ordered by id.
	Secrets(ctx context.Context) ([]Secret, error)

	// PutKeys writes put and deletes the keys named in del, atomically.
	PutKeys(ctx context.Context, put []Key, del []string, a *AuditEntry) error
	// Keys lists every signing key, ordered by creation time.
	Keys(ctx context.Context) ([]Key, error)

	// CreateEdgeClient adds e; ErrConflict if its id exists.
	CreateEdgeClient(ctx context.Context, e EdgeClient, a *AuditEntry) error
	// DeleteEdgeClient removes a client; ErrNotFound if none.
	DeleteEdgeClient(ctx context.Context, id string, a *AuditEntry) error
	// EdgeClients lists every introspection client, ordered by id.
	EdgeClients(ctx context.Context) ([]EdgeClient, error)

	// UseJTI records id as used until exp and reports whether it was
	// fresh. The check and the write are one atomic step: of concurrent
	// calls with one id exactly one is fresh, and a used id stays used
	// across a restart until exp. A store may identify a use by the pair
	// (id, exp), as a replayed credential repeats both; the issuer also
	// checks ids alone in memory, loaded from UsedJTIs at start.
	UseJTI(ctx context.Context, id string, exp time.Time) (bool, error)
	// UsedJTIs lists the used ids not yet purged.
	UsedJTIs(ctx context.Context) ([]UsedJTI, error)
	// PutJTIs records many used ids at once, durably, in one transaction;
	// ids already recorded are left as they are. UsedJTIs lists them, but
	// UseJTI need not see them: the issuer uses one of the two ways per
	// run and checks every id in memory first, loaded from UsedJTIs.
	PutJTIs(ctx context.Context, ids []UsedJTI) error
	// RevokeToken records an edge token's jti as revoked until exp.
	RevokeToken(ctx context.Context, jti string, exp time.Time, a *AuditEntry) error
	// RevokedTokens lists the revoked tokens not yet purged.
	RevokedTokens(ctx context.Context) ([]RevokedToken, error)
	// Purge forgets used jti values and revoked tokens expired before now.
	Purge(ctx context.Context, now time.Time) error

	// Meta reads a small value the issuer keeps about itself (nil if unset).
	Meta(ctx context.Context, key string) ([]byte, error)
	// SetMeta writes such a value durably.
	SetMeta(ctx context.Context, key string, value []byte) error

	// Audit lists entries with Seq greater than after, oldest first, at
	// most limit of them (all when limit <= 0).
	Audit(ctx context.Context, after uint64, limit int) ([]AuditEntry, error)

	// Close releases the store.
	Close() error
}
