package chain

import "errors"

// Errors returned by the verifiers in this package. They are wrapped with
// context; callers match them with errors.Is.
var (
	// ErrMalformed means the credential could not be parsed at all.
	ErrMalformed = errors.New("malformed credential")
	// ErrExpired means the credential's expiry has passed.
	ErrExpired = errors.New("credential expired")
	// ErrNotYetValid means the credential's nbf or iat lies in the future.
	ErrNotYetValid = errors.New("credential not yet valid")
	// ErrLifetime means the credential lives longer than the verifier allows.
	ErrLifetime = errors.New("credential lifetime too long")
	// ErrBadSignature means the signature or HMAC did not verify.
	ErrBadSignature = errors.New("signature invalid")
	// ErrUnknownKey means no key or secret matched the credential's kid or tag.
	ErrUnknownKey = errors.New("unknown key")
	// ErrAlgorithm means the algorithm is not allowed, or not the one the key is pinned to.
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrAudience means the aud claim does not name this verifier.
	ErrAudience = errors.New("wrong audience")
	// ErrIssuer means the iss claim is not the expected issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrMissingClaim means a required claim (exp, iat, jti, sub, …) is absent.
	ErrMissingClaim = errors.New("required claim missing")
	// ErrTooLarge means the credential exceeds the verifier's size limit.
	ErrTooLarge = errors.New("credential too large")
	// ErrForbidden means a grant does not allow what was asked.
	ErrForbidden = errors.New("not allowed by grant")
)
