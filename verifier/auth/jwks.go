package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"golang.org/x/time/rate"
)

// MetadataPath is where an RFC 8414 authorization server publishes its
// metadata, relative to its issuer URL.
const MetadataPath = "/.well-known/oauth-authorization-server"

// maxDocument bounds metadata and JWKS documents read from the network.
const maxDocument = 1 << 20

// Metadata is the part of RFC 8414 authorization server metadata the edge
// uses.
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	TokenEndpoint         string `json:"token_endpoint,omitempty"`
}

// FetchMetadata reads issuer's RFC 8414 metadata and checks that it names
// issuer.
func FetchMetadata(ctx context.Context, client *http.Client, issuer string) (*Metadata, error) {
	u := strings.TrimSuffix(issuer, "/") + MetadataPath
	var md Metadata
	if err := getJSON(ctx, client, u, &md); err != nil {
		return nil, fmt.Errorf("issuer metadata: %w", err)
	}
	if strings.TrimSuffix(md.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return nil, fmt.Errorf("issuer metadata names issuer %q, want %q", md.Issuer, issuer)
	}
	if md.JWKSURI == "" {
		return nil, errors.New("issuer metadata has no jwks_uri")
	}
	return &md, nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocument))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

// JWKSource is a chain.KeyLookup backed by the issuer's JWKS. It finds
// the JWKS through the issuer's RFC 8414 metadata (or uses JWKSURL), keeps
// the last good key set, refetches when asked for an unknown kid (at most
// Refetch per second, so forged kids cannot flood the issuer), and keeps
// serving cached keys while the issuer is unreachable.
type JWKSource struct {
	// Issuer is the issuer URL whose metadata names the JWKS.
	Issuer string
	// JWKSURL, when set, is used instead of discovery.
	JWKSURL string
	// Client makes the HTTP requests; a client with a 5 s timeout when nil.
	Client *http.Client
	// OnFetch, when set, is told of every fetch and its error.
	OnFetch func(err error)

	limiter *rate.Limiter
	fetchMu sync.Mutex // one fetch at a time
	mu      sync.RWMutex
	keys    chain.KeySet
	jwksURL string
}

// NewJWKSource makes a source for issuer that refetches on unknown kids at
// most once per minInterval (1 s when zero), in bursts of 3.
func NewJWKSource(issuer, jwksURL string, client *http.Client, minInterval time.Duration) *JWKSource {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if minInterval <= 0 {
		minInterval = time.Second
	}
	return &JWKSource{
		Issuer:  issuer,
		JWKSURL: jwksURL,
		Client:  client,
		limiter: rate.NewLimiter(rate.Every(minInterval), 3),
	}
}

// Refresh fetches the key set now. On failure the cached keys stay.
func (s *JWKSource) Refresh(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	err := s.refresh(ctx)
	if s.OnFetch != nil {
		s.OnFetch(err)
	}
	return err
}

func (s *JWKSource) refresh(ctx context.Context) error {
	s.mu.RLock()
	u := s.jwksURL
	s.mu.RUnlock()
	if u == "" {
		u = s.JWKSURL
	}
	if u == "" {
		md, err := FetchMetadata(ctx, s.Client, s.Issuer)
		if err != nil {
			return err
		}
		u = md.JWKSURI
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	res, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks %s: status %d", u, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocument))
	if err != nil {
		return fmt.Errorf("jwks %s: %w", u, err)
	}
	set, err := chain.ParseJWKS(body)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", u, err)
	}
	s.mu.Lock()
	s.keys, s.jwksURL = set, u
	s.mu.Unlock()
	return nil
}

// Len is the number of cached keys.
func (s *JWKSource) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}

// LookupKey implements chain.KeyLookup: a cached key, or, for an unknown
// kid and if the rate limit allows, the key after a refetch.
func (s *JWKSource) LookupKey(kid string) (chain.VerificationKey, bool) {
	s.mu.RLock()
	k, ok := s.keys[kid]
	s.mu.RUnlock()
	if ok || kid == "" || len(kid) > 128 {
		return k, ok
	}
	if !s.limiter.Allow() {
		return chain.VerificationKey{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Refresh(ctx); err != nil {
		return chain.VerificationKey{}, false
	}
	s.mu.RLock()
	k, ok = s.keys[kid]
	s.mu.RUnlock()
	return k, ok
}

var _ chain.KeyLookup = (*JWKSource)(nil)
