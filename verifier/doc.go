// Package verifier is the trunkpass SIP edge: it listens on UDP, TCP, TLS,
// WebSocket and secure WebSocket at once, authenticates requests with the
// authenticators of package auth (Bearer edge tokens checked against the
// issuer's JWKS, RFC 7662 introspection, HS profiles, Digest with
// ephemeral credentials), enforces the token's SIP grant (AOR, methods,
// destinations, source addresses), keeps a registrar, and proxies calls
// statefully to the upstream trunk and from the trunk to registered
// visitors.
//
// Use it from another program:
//
//	cfg := verifier.DefaultConfig()
//	cfg.Issuer = "http://127.0.0.1:8080"
//	edge, err := verifier.New(cfg, verifier.WithLogger(log))
//	if err != nil { … }
//	defer edge.Close()
//	err = edge.ListenAndServe(ctx) // returns when ctx is done
//
// Answers follow SPEC §4: 401 (REGISTER) or 407 with a Bearer challenge
// (realm, authz_server, error="invalid_token" for bad tokens) and Digest
// challenges when Digest is enabled; 403 with a reason phrase naming the
// check that failed. In-dialog requests follow the Record-Route set and
// are not challenged again. Tokens and secrets are never logged.
package verifier
