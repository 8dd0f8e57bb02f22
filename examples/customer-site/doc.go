// Package customersite is the example customer website of the trunkpass
// demo: the backend a customer runs next to its web pages. It holds the
// customer's shared secret, lets a visitor "log in" (a fake login that
// only sets a signed session cookie) and, for the logged-in visitor only,
// mints the short-lived credentials the browser exchanges at the hosted
// issuer:
//
//   - POST /api/assertion: a customer assertion (HS256 JWT; iss = customer
//     id, sub = visitor, aud = issuer URL, exp = iat + 60 s, random jti,
//     kid = secret id), made with chain.MintAssertion;
//   - POST /api/ephemeral: the legacy form, an "<expiry>:<user>" username
//     and base64 HMAC password, made with chain.MintEphemeral.
//
// The pages (GET / for the JWT flow, GET /legacy for the Digest flow) are
// plain JavaScript: they post the credential to the issuer's /v1/token
// (CORS), start JsSIP with the edge token, register, refresh the token
// before it expires and call the echo test trunk.
//
// Security rules this example follows and a real customer backend must
// too: the secret never leaves the backend (no response, no log line, no
// flag that shows in ps — it comes from TRUNKPASS_CUSTOMER_SECRET or a
// file); credentials are minted only for an authenticated visitor and
// name that visitor as the subject; they live seconds, not hours; session
// cookies are HMAC-signed, HttpOnly and SameSite=Lax.
//
// The secret is used as the HMAC key byte for byte, exactly as the issuer
// showed it when it was created.
//
// JsSIP's browser bundle (static/jssip.min.js) is built from the npm package
// by `npm run build:jssip` (esbuild; the package ships no browser bundle)
// and checked in, so the demo needs nothing but Go; a test rebuilds it and
// fails when the checked-in copy no longer matches package-lock.json. It is
// served from Options.JSSIPPath when that file exists, else from the files
// embedded at build time.
package customersite
