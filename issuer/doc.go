// Package issuer is the hosted trunkpass issuer and its provisioning
// (portal) API.
//
// An Issuer, built by New from a Config, exchanges customer credentials for
// edge tokens in four forms, each handled by one credential kind:
//
//   - a customer assertion (an HS256/384/512 JWT, jti accepted once);
//   - the legacy ephemeral pair (expiry:user and a base64 HMAC);
//   - server to server (HTTP Basic secret id and secret, then sub, grants
//     and ttl);
//   - single sign-on (an id_token from one of the customer's trusted OpenID
//     Connect providers).
//
// The Issuer keeps everything a token request reads (customers, their
// secrets, the signing keys) in memory as an immutable snapshot, replaced
// on every provisioning write after the write is durable in the store.
// Secrets and private keys are sealed with AES-256-GCM under the master key
// before they reach the store.
//
// Handler serves the HTTP API (SPEC §3). Errors of the core are the values
// in errors.go, matched with errors.Is; only the HTTP layer turns them into
// status codes and OAuth error codes.
//
// Programs that embed an issuer (such as trunkpass demo) provision it with
// CreateCustomer, CreateSecret and CreateEdgeClient, and serve Handler.
package issuer
