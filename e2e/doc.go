// Package e2e holds end-to-end tests: they start the issuer (or the whole
// `trunkpass demo`) on 127.0.0.1 and check that what it hands out is
// accepted by the real programs users have — npm jose, Kamailio
// auth_ephemeral with SIPp, coturn — and that the README's demo command
// serves everything it promises.
//
// The peers come from internal/testpeer: a missing program skips the test,
// except under CI=true where it fails it. The package has no API.
package e2e
