package issuer

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trunkpass/trunkpass/chain"
)

// oidcAlgorithms are the id_token algorithms accepted (SPEC §2.2).
var oidcAlgorithms = []string{"RS256", "ES256"}

// oidcRefetchInterval bounds how often an unknown kid makes the issuer
// fetch a provider's JWKS again.
const oidcRefetchInterval = 30 * time.Second

const oidcMaxDocument = 1 << 20

// oidcCache keeps each provider's JWKS, found by discovery or configured.
type oidcCache struct {
	httpc *http.Client
	now   func() time.Time
	mu    sync.Mutex
	provs map[string]*oidcProvider // by issuer + "|" + jwks_uri
}

type oidcProvider struct {
	mu        sync.Mutex
	jwksURI   string
	keys      map[string]chain.VerificationKey
	fetchedAt time.Time
}

func newOIDCCache(c *http.Client, now func() time.Time) *oidcCache {
	return &oidcCache{httpc: c, now: now, provs: map[string]*oidcProvider{}}
}

func jwtTime(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }

// verify checks an id_token against the customer's providers and returns
// the SIP user it names.
func (o *oidcCache) verify(ctx context.Context, idps []IdP, token string) (string, error) {
	if len(token) > chain.DefaultMaxTokenSize {
		return "", fmt.Errorf("id_token of %d bytes: %w", len(token), chain.ErrTooLarge)
	}
	if len(idps) == 0 {
		return "", fmt.Errorf("customer trusts no identity provider: %w", chain.ErrUnknownKey)
	}
	var unverified jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &unverified); err != nil {
		return "", fmt.Errorf("id_token: %w", chain.ErrMalformed)
	}
	var idp *IdP
	for n := range idps {
		if idps[n].Issuer == unverified.Issuer { // an exact look-up among configured issuers
			idp = &idps[n]
		}
	}
	if idp == nil {
		return "", fmt.Errorf("id_token issuer is not trusted by the customer: %w", chain.ErrIssuer)
	}
	prov := o.provider(idp)
	claims := jwt.MapClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods(oidcAlgorithms),
		jwt.WithIssuer(idp.Issuer),
		jwt.WithAudience(idp.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(o.now),
	)
	_, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := o.key(ctx, idp, prov, kid)
		if err != nil {
			return nil, err
		}
		if k.Alg != t.Method.Alg() {
			return nil, fmt.Errorf("id_token alg %s, key %q is %s: %w", t.Method.Alg(), kid, k.Alg, chain.ErrAlgorithm)
		}
		return k.Key, nil
	})
	if err != nil {
		return "", fmt.Errorf("id_token: %w", mapOIDCError(err))
	}
	if v, ok := claims["email_verified"]; ok {
		if b, isBool := v.(bool); (isBool && !b) || (!isBool && v != "true") {
			return "", fmt.Errorf("id_token: email not verified: %w", chain.ErrForbidden)
		}
	}
	claim := idp.Claim
	if claim == "" {
		claim = "email"
	}
	name, _ := claims[claim].(string)
	if name == "" {
		return "", fmt.Errorf("id_token: %s: %w", claim, chain.ErrMissingClaim)
	}
	user, domain := name, ""
	if at := strings.LastIndexByte(name, '@'); at >= 0 {
		user, domain = name[:at], strings.ToLower(name[at+1:])
	}
	if domain != "" || len(idp.Domains) > 0 {
		ok := false
		for _, d := range idp.Domains {
			ok = ok || strings.EqualFold(d, domain)
		}
		if !ok {
			return "", fmt.Errorf("id_token: email domain %q not allowed: %w", domain, chain.ErrForbidden)
		}
	}
	return user, nil
}

func mapOIDCError(err error) error {
	for _, e := range []error{chain.ErrUnknownKey, chain.ErrAlgorithm} {
		if errors.Is(err, e) {
			return err
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", chain.ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: %v", chain.ErrAlgorithm, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: %v", chain.ErrBadSignature, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %v", chain.ErrExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("%w: %v", chain.ErrNotYetValid, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Errorf("%w: %v", chain.ErrAudience, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fmt.Errorf("%w: %v", chain.ErrIssuer, err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: %v", chain.ErrMissingClaim, err)
	}
	return fmt.Errorf("%w: %v", chain.ErrMalformed, err)
}

func (o *oidcCache) provider(idp *IdP) *oidcProvider {
	o.mu.Lock()
	defer o.mu.Unlock()
	key := idp.Issuer + "|" + idp.JWKSURI
	p, ok := o.provs[key]
	if !ok {
		p = &oidcProvider{jwksURI: idp.JWKSURI}
		o.provs[key] = p
	}
	return p
}

// key finds kid in the provider's JWKS, fetching it the first time and
// again for an unknown kid at most every oidcRefetchInterval, failed
// fetches included (a provider that is down is not hammered).
func (o *oidcCache) key(ctx context.Context, idp *IdP, p *oidcProvider, kid string) (chain.VerificationKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.keys[kid]; ok {
		return k, nil
	}
	now := o.now()
	if !p.fetchedAt.IsZero() && now.Sub(p.fetchedAt) < oidcRefetchInterval {
		return chain.VerificationKey{}, fmt.Errorf("id_token kid %q: %w", kid, chain.ErrUnknownKey)
	}
	if err := o.refresh(ctx, idp, p); err != nil {
		p.fetchedAt = now
		return chain.VerificationKey{}, fmt.Errorf("identity provider keys: %v: %w", err, chain.ErrUnknownKey)
	}
	p.fetchedAt = now
	if k, ok := p.keys[kid]; ok {
		return k, nil
	}
	return chain.VerificationKey{}, fmt.Errorf("id_token kid %q: %w", kid, chain.ErrUnknownKey)
}

func (o *oidcCache) getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := o.httpc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, oidcMaxDocument+1))
	if err != nil {
		return err
	}
	if len(body) > oidcMaxDocument {
		return fmt.Errorf("GET %s: document too large", url)
	}
	return json.Unmarshal(body, v)
}

func (o *oidcCache) refresh(ctx context.Context, idp *IdP, p *oidcProvider) error {
	if p.jwksURI == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := o.getJSON(ctx, strings.TrimSuffix(idp.Issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return err
		}
		if doc.Issuer != idp.Issuer || doc.JWKSURI == "" {
			return fmt.Errorf("discovery document of %s names issuer %q", idp.Issuer, doc.Issuer)
		}
		p.jwksURI = doc.JWKSURI
	}
	var set chain.JWKS
	if err := o.getJSON(ctx, p.jwksURI, &set); err != nil {
		return err
	}
	keys := map[string]chain.VerificationKey{}
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		if j.Alg == "" {
			switch j.Kty {
			case "RSA":
				j.Alg = "RS256"
			case "EC":
				j.Alg = "ES256"
			}
		}
		if j.Alg != "RS256" && j.Alg != "ES256" {
			continue
		}
		pub, err := j.PublicKey()
		if err != nil {
			continue
		}
		keys[j.Kid] = chain.VerificationKey{Alg: j.Alg, Key: crypto.PublicKey(pub)}
	}
	p.keys = keys
	return nil
}
