// Package auth holds the authenticators of the trunkpass SIP edge. Each is
// usable on its own by any sipgo program: it reads the credentials a
// request carries (Authorization or Proxy-Authorization) and returns the
// Identity they prove, or an error that says which challenge to send.
//
//   - BearerJWT verifies edge tokens locally against the issuer's JWKS,
//     found through RFC 8414 metadata (JWKSource); an unknown kid triggers a
//     rate-limited refetch, and cached keys keep working while the issuer is
//     down.
//   - Introspection asks an RFC 7662 server, caching answers no longer than
//     the token lives.
//   - HSProfiles verifies HS256 tokens in the OpenSIPS auth_jwt style: a tag
//     claim selects a profile whose secrets (with validity windows) may
//     verify it; the profile's data becomes headers.
//   - Digest checks ephemeral credentials in the Kamailio auth_ephemeral
//     style with MD5 or SHA-256, qop=auth and stateless HMAC nonces.
//
// Security rules kept here: tokens, passwords and secrets are never logged
// nor put in errors; MACs, digests and passwords are compared in constant
// time; every token parse names its algorithms, audience and issuer and
// requires exp; a secret is only found by an exact look-up, after which the
// signature is checked before any other claim is trusted; the clock is
// injected.
package auth
