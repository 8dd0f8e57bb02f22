// Verifies trunkpass edge tokens the way a third-party service would: with
// npm jose, discovering the JWKS from the issuer's RFC 8414 metadata.
//
//   node jose_remote.mjs <issuer-url> <audience> <token|@url>...
//
// Every argument after the audience is a compact JWS, or "@<url>": a URL
// whose POST response body is the next token (the test rotates the
// issuer's keys there first, so the token is signed by a key this
// process has not seen yet and the remote JWKS must be fetched again).
// One JSON line is printed per token:
//   {"ok":true,"kid":"...","alg":"...","payload":{...}}
//   {"ok":false,"code":"ERR_JWS_SIGNATURE_VERIFICATION_FAILED","message":"..."}
// The exit status is 0 unless the metadata cannot be read.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience, ...tokens] = process.argv.slice(2);
if (!issuer || !audience || tokens.length === 0) {
  console.error('usage: jose_remote.mjs <issuer-url> <audience> <token|@url>...');
  process.exit(2);
}

const metaURL = new URL('/.well-known/oauth-authorization-server', issuer);
const res = await fetch(metaURL, { signal: AbortSignal.timeout(10000) });
if (!res.ok) {
  console.error(`GET ${metaURL}: ${res.status}`);
  process.exit(1);
}
const meta = await res.json();
if (meta.issuer !== issuer || !meta.jwks_uri) {
  console.error(`metadata: issuer ${meta.issuer}, jwks_uri ${meta.jwks_uri}`);
  process.exit(1);
}

// cooldownDuration 0: refetch the JWKS as soon as a token names an unknown
// kid (the default waits 30 s after the previous fetch).
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri), { cooldownDuration: 0, timeoutDuration: 10000 });

for (let token of tokens) {
  if (token.startsWith('@')) {
    const r = await fetch(token.slice(1), { method: 'POST', signal: AbortSignal.timeout(10000) });
    token = (await r.text()).trim();
    if (!r.ok) {
      console.log(JSON.stringify({ ok: false, code: 'FETCH', message: `${r.status} ${token}` }));
      continue;
    }
  }
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: meta.issuer,
      audience,
      algorithms: ['EdDSA', 'ES256', 'RS256'],
    });
    console.log(JSON.stringify({ ok: true, kid: protectedHeader.kid, alg: protectedHeader.alg, payload }));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, code: err.code ?? err.name, message: String(err.message) }));
  }
}
