// Package chain holds the pure credential logic of trunkpass: ephemeral
// HMAC credentials, customer assertions, edge tokens and their SIP grants,
// customer secrets with validity windows, and issuer signing keys with
// their JWKS documents.
//
// The package performs no I/O: no network, no storage, no SIP, no HTTP.
// It imports only the standard library and github.com/golang-jwt/jwt/v5.
//
// Security rules kept here:
//   - every parse names its allowed algorithms; "none" is never accepted and
//     a key is used only with the algorithm it is pinned to;
//   - exp is always required, iat where a lifetime is bounded;
//   - MACs and passwords are compared in constant time;
//   - the clock is injected (a Now func) wherever a time is checked.
package chain
