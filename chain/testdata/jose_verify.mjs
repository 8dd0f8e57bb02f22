// Verifies JWTs with the npm "jose" package, independently of chain.
//
//   node chain/testdata/jose_verify.mjs JWKS_FILE ISSUER AUDIENCE ALGS NOW [TOKEN...]
//
// ALGS is a comma-separated allow-list (e.g. EdDSA,ES256,RS256); NOW is the
// Unix time to verify at. Tokens come from the arguments, or one per line on
// standard input when none is given. For each token one JSON line is
// printed: {"ok":true,"payload":{...}} or {"ok":false,"code":...,"error":...}.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, jwtVerify } from 'jose';

const [jwksFile, issuer, audience, algs, now, ...args] = process.argv.slice(2);
if (!jwksFile || !issuer || !audience || !algs || !now) {
  console.error('usage: jose_verify.mjs JWKS_FILE ISSUER AUDIENCE ALGS NOW [TOKEN...]');
  process.exit(2);
}
const jwks = createLocalJWKSet(JSON.parse(readFileSync(jwksFile, 'utf8')));
const tokens = args.length > 0 ? args : readFileSync(0, 'utf8').split('\n').filter((l) => l.trim() !== '');
for (const token of tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token.trim(), jwks, {
      issuer,
      audience,
      algorithms: algs.split(','),
      currentDate: new Date(Number(now) * 1000),
      requiredClaims: ['exp', 'iat', 'sub'],
    });
    console.log(JSON.stringify({ ok: true, alg: protectedHeader.alg, kid: protectedHeader.kid, payload }));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, code: err.code ?? 'ERR', error: String(err.message) }));
  }
}
