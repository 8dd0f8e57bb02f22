// Mints an EdDSA (Ed25519) JWT with the npm "jose" package, independently of
// chain, and prints {"jwks":{...},"token":"..."} as one JSON line.
//
//   node chain/testdata/jose_sign.mjs ISSUER AUDIENCE SUBJECT IAT EXP CLAIMS_JSON
//
// The key is generated for this run and exported as a JWK; "alg", "kid" and
// "use" are added because a verifier must never guess a key's algorithm.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';

const [issuer, audience, subject, iat, exp, claims] = process.argv.slice(2);
if (!issuer || !audience || !subject || !iat || !exp || !claims) {
  console.error('usage: jose_sign.mjs ISSUER AUDIENCE SUBJECT IAT EXP CLAIMS_JSON');
  process.exit(2);
}
const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
const jwk = await exportJWK(publicKey);
jwk.kid = await calculateJwkThumbprint(jwk);
jwk.alg = 'EdDSA';
jwk.use = 'sig';
const token = await new SignJWT(JSON.parse(claims))
  .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid, typ: 'JWT' })
  .setIssuer(issuer)
  .setAudience(audience)
  .setSubject(subject)
  .setIssuedAt(Number(iat))
  .setNotBefore(Number(iat))
  .setExpirationTime(Number(exp))
  .setJti(crypto.randomUUID())
  .sign(privateKey);
console.log(JSON.stringify({ jwks: { keys: [jwk] }, token }));
