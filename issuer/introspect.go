package issuer

import (
	"context"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Introspection is an RFC 7662 answer. An inactive token is exactly
// {"active": false}.
type Introspection struct {
	Active    bool            `json:"active"`
	TokenType string          `json:"token_type,omitempty"`
	Subject   string          `json:"sub,omitempty"`
	Username  string          `json:"username,omitempty"`
	Issuer    string          `json:"iss,omitempty"`
	Audience  []string        `json:"aud,omitempty"`
	IssuedAt  int64           `json:"iat,omitempty"`
	NotBefore int64           `json:"nbf,omitempty"`
	ExpiresAt int64           `json:"exp,omitempty"`
	JTI       string          `json:"jti,omitempty"`
	CID       string          `json:"cid,omitempty"`
	SIP       *chain.SIPGrant `json:"sip,omitempty"`
}

func (i *Issuer) verifyEdgeToken(token string) (*chain.EdgeClaims, error) {
	v := chain.EdgeVerifier{Keys: i.state.Load().keySet, Issuer: i.cfg.URL, Audience: i.cfg.Edge.Audience, Now: i.now}
	return v.Verify(token)
}

// Introspect answers an introspection client (authenticated with its id
// and secret) about token. A token that does not verify, has expired or
// was revoked is inactive.
func (i *Issuer) Introspect(clientID, clientSecret, token string) (*Introspection, error) {
	if !i.checkEdgeClient(clientID, clientSecret) {
		return nil, invalidClient("introspection client id or secret wrong")
	}
	c, err := i.verifyEdgeToken(token)
	if err != nil || i.revoked.has(c.ID) {
		return &Introspection{Active: false}, nil
	}
	sip := c.SIP
	return &Introspection{
		Active: true, TokenType: "Bearer", Subject: c.Subject, Username: c.Subject, Issuer: c.Issuer,
		Audience: c.Audience, IssuedAt: c.IssuedAt.Unix(), NotBefore: unixOrZero(c.NotBefore),
		ExpiresAt: c.ExpiresAt.Unix(), JTI: c.ID, CID: c.CID, SIP: &sip,
	}, nil
}

func unixOrZero(t *jwt.NumericDate) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

// RevokeAuth is who asks for a revocation: the admin token, an
// introspection client, or a customer secret (id and value).
type RevokeAuth struct {
	AdminToken             string
	ClientID, ClientSecret string
}

// Revoke revokes an edge token (RFC 7009): after it, introspection calls
// the token inactive. A token that does not verify is ignored, as RFC 7009
// asks. A customer may revoke only its own tokens.
func (i *Issuer) Revoke(ctx context.Context, auth RevokeAuth, token string) error {
	actor := ""
	var customer string
	switch {
	case auth.AdminToken != "":
		if !i.CheckAdminToken(auth.AdminToken) {
			return fmt.Errorf("%w", ErrUnauthorized)
		}
		actor = "admin"
	case auth.ClientID != "":
		if i.checkEdgeClient(auth.ClientID, auth.ClientSecret) {
			actor = "edge:" + auth.ClientID
			break
		}
		st := i.state.Load()
		p, err := serverKind{i}.authenticate(ctx, st, &TokenRequest{ClientID: auth.ClientID, ClientSecret: auth.ClientSecret, Subject: "-"})
		if err != nil {
			return invalidClient("client id or secret wrong")
		}
		customer = p.customer.ID
		actor = "customer:" + customer
	default:
		return invalidClient("client authentication required")
	}
	c, err := i.verifyEdgeToken(token)
	if err != nil {
		return nil
	}
	if customer != "" && c.CID != customer {
		return fmt.Errorf("%w: the token was issued for another customer", ErrUnauthorizedClient)
	}
	a := &store.AuditEntry{Time: i.now().UTC(), Actor: actor, Action: "token.revoke", Target: c.CID + "/" + c.ID}
	if err := i.store.RevokeToken(ctx, c.ID, c.ExpiresAt.Time, a); err != nil {
		return err
	}
	i.revoked.add(c.ID, c.ExpiresAt.Time)
	return nil
}
