import Jwt from '@hapi/jwt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { printsToken, startBanner } from '../src/start-banner.ts';

const url = 'http://127.0.0.1:8080';
const secret = 's'.repeat(64);
const generated = { embeddedDatabase: true, dataDir: '/srv/data', jwt: { secret, secretFile: '/srv/data/jwt-secret' } };
const operatorSecret = { embeddedDatabase: true, dataDir: '/srv/data', jwt: { secret } };
const jwtShape = /eyJ[\w-]*\.[\w-]+\.[\w-]+/;

test('a generated secret on a terminal: a 24 h local-admin token and a console link that signs in', () => {
  assert.ok(printsToken(generated, true));
  const text = startBanner({ ...generated, jwt: { ...generated.jwt, issuer: 'iss', audience: 'aud' } }, url, true)!;
  const token = /Token \(local-admin, 24 h\): (\S+)/.exec(text)?.[1];
  assert.ok(token, text);
  assert.ok(text.includes(`Console:  ${url}/#token=${token}`));
  const { payload } = Jwt.token.decode(token!).decoded as { payload: Record<string, unknown> };
  assert.equal({ sub: payload.sub, scope: payload.scope, iss: payload.iss, aud: payload.aud }, { sub: 'local-admin', scope: 'admin', iss: 'iss', aud: 'aud' });
  assert.is(Number(payload.exp) - Number(payload.iat), 86_400);
  Jwt.token.verifySignature(Jwt.token.decode(token!), secret);
});

test('stdout not a terminal (a log file, a collector): no token, the command that mints one', () => {
  assert.not.ok(printsToken(generated, false));
  const text = startBanner(generated, url, false)!;
  assert.not.match(text, jwtShape);
  assert.not.ok(text.includes('#token='));
  assert.ok(text.includes(`Console:  ${url}/ (sign in with a token)`));
  assert.ok(text.includes('npm run token -- --sub alice --scope admin'));
});

test('JWT_SECRET set by the operator: no token even on a terminal', () => {
  assert.not.ok(printsToken(operatorSecret, true));
  const text = startBanner(operatorSecret, url, true)!;
  assert.not.match(text, jwtShape);
  assert.ok(text.includes('npm run token -- --sub alice --scope admin'));
});

test('JWKS (no secret here): points at the identity provider; a real database: nothing printed', () => {
  const jwks = { embeddedDatabase: true, dataDir: '/srv/data', jwt: { jwksUrl: 'https://idp/jwks' } };
  assert.not.ok(printsToken(jwks, true));
  assert.match(startBanner(jwks, url, true)!, /from the identity provider behind JWT_JWKS_URL/);
  assert.is(startBanner({ ...generated, embeddedDatabase: false }, url, true), null);
});

test.run();
