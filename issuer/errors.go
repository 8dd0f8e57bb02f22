package issuer

import (
	"errors"
	"fmt"
	"time"

	"github.com/trunkpass/trunkpass/chain"
	"github.com/trunkpass/trunkpass/issuer/store"
)

// Errors of the issuer core. They are wrapped with context; callers (the
// HTTP layer) match them with errors.Is. Each names the OAuth error it
// stands for where one fits.
var (
	// ErrInvalidRequest: the request is malformed or misses a parameter.
	ErrInvalidRequest = errors.New("invalid_request")
	// ErrInvalidGrant: the assertion, credential or id_token is invalid,
	// expired, replayed or not for this issuer.
	ErrInvalidGrant = errors.New("invalid_grant")
	// ErrInvalidClient: client authentication (HTTP Basic) failed.
	ErrInvalidClient = errors.New("invalid_client")
	// ErrUnauthorizedClient: the client is authenticated but may not do this
	// (a browser origin the customer does not list, another customer's token).
	ErrUnauthorizedClient = errors.New("unauthorized_client")
	// ErrUnsupportedGrantType: the OAuth grant type is not supported.
	ErrUnsupportedGrantType = errors.New("unsupported_grant_type")
	// ErrReplay: the assertion's jti was already used. Always joined with
	// ErrInvalidGrant.
	ErrReplay = errors.New("assertion already used")
	// ErrUnauthorized: the admin token is missing or wrong.
	ErrUnauthorized = errors.New("admin token missing or wrong")
	// ErrTooLarge: the request body is over the limit.
	ErrTooLarge = errors.New("request too large")
	// ErrRateLimited: too many requests; see RateLimitError.
	ErrRateLimited = errors.New("rate limited")
	// ErrNotFound: the provisioned record does not exist.
	ErrNotFound = store.ErrNotFound
	// ErrConflict: a record with that id already exists.
	ErrConflict = store.ErrConflict
	// ErrConfig: the configuration is invalid.
	ErrConfig = errors.New("invalid configuration")
	// ErrClosed: the issuer is shutting down and issues no more tokens.
	ErrClosed = errors.New("issuer is shutting down")
)

// RateLimitError is returned when a rate limit refuses a request.
type RateLimitError struct {
	// Scope is "customer" or "source".
	Scope string
	// RetryAfter is when a request may succeed again.
	RetryAfter time.Duration
}

// Error implements error.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited per %s, retry after %s", e.Scope, e.RetryAfter.Round(time.Millisecond))
}

// Is makes a RateLimitError match ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

func invalidRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

func invalidGrant(err error) error { return fmt.Errorf("%w: %w", ErrInvalidGrant, err) }

func invalidClient(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidClient, fmt.Sprintf(format, args...))
}

// Reason names the cause of a failed token request in a few words, for
// metrics and logs; it never contains request data.
func Reason(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, ErrReplay):
		return "replay"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrTooLarge), errors.Is(err, chain.ErrTooLarge):
		return "too_large"
	case errors.Is(err, chain.ErrExpired):
		return "expired"
	case errors.Is(err, chain.ErrNotYetValid):
		return "not_yet_valid"
	case errors.Is(err, chain.ErrAudience):
		return "audience"
	case errors.Is(err, chain.ErrIssuer):
		return "issuer"
	case errors.Is(err, chain.ErrAlgorithm):
		return "algorithm"
	case errors.Is(err, chain.ErrBadSignature):
		return "signature"
	case errors.Is(err, chain.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, chain.ErrLifetime):
		return "lifetime"
	case errors.Is(err, chain.ErrMissingClaim):
		return "missing_claim"
	case errors.Is(err, chain.ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrInvalidClient):
		return "invalid_client"
	case errors.Is(err, ErrUnauthorizedClient):
		return "unauthorized_client"
	case errors.Is(err, ErrInvalidRequest):
		return "invalid_request"
	case errors.Is(err, ErrUnsupportedGrantType):
		return "unsupported_grant_type"
	case errors.Is(err, ErrInvalidGrant):
		return "invalid_grant"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	}
	return "internal"
}
