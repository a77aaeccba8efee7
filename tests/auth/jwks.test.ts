import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jwksKeys } from '../../src/auth/jwks.ts';

// A loopback identity provider whose key set the tests change (rotation) or take down.
let served: object[] = [];
let up = true;
let fetches = 0;
const idp: Server = createServer((_req, res) => {
  fetches++;
  if (!up) return void res.writeHead(500).end();
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
});
await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks`;

const rsaJwk = (kid: string, extra: object = {}) => ({ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid, ...extra });
const ecJwk = (kid: string, namedCurve = 'P-256') => ({ ...generateKeyPairSync('ec', { namedCurve }).publicKey.export({ format: 'jwk' }), kid });
// Generous fetch timeout: the suite shares two cores with other suites; timeouts are not under test here.
const slack = { timeoutMs: 15_000 };
const header = (kid?: string) => ({ decoded: { header: kid === undefined ? {} : { kid } } });

test('reads RSA and EC keys with their algorithms; skips encryption keys, unknown curves and junk', async () => {
  served = [rsaJwk('r1'), ecJwk('e1'), ecJwk('e384', 'P-384'), rsaJwk('enc', { use: 'enc' }), { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }, { kty: 'RSA', kid: 'broken', e: 'AQAB' }, rsaJwk('ps', { alg: 'PS256' })];
  const keys = await jwksKeys(url, slack)(header('r1'));
  const byKid = Object.fromEntries(keys.map((k) => [k.kid, k.algorithms]));
  assert.equal(byKid, { r1: ['RS256', 'RS384', 'RS512'], e1: ['ES256'], e384: ['ES384'] });
});

test('caches for the TTL, refetches after it', async () => {
  served = [rsaJwk('a')];
  let now = 1_000_000;
  const source = jwksKeys(url, { ...slack, ttlMs: 600_000, now: () => now });
  const before = fetches;
  await source(header('a'));
  await source(header('a'));
  now += 599_000;
  await source(header('a'));
  assert.is(fetches - before, 1);
  now += 2_000;
  await source(header('a'));
  assert.is(fetches - before, 2);
});

test('key rotation: an unknown kid refetches, but at most once per minRefreshMs', async () => {
  served = [rsaJwk('old')];
  let now = 5_000_000;
  const source = jwksKeys(url, { ...slack, minRefreshMs: 30_000, now: () => now });
  await source(header('old'));
  const before = fetches;
  served = [rsaJwk('old'), rsaJwk('new')];
  now += 10_000;
  assert.not.ok((await source(header('new'))).some((k) => k.kid === 'new'), 'too soon: no refetch');
  assert.is(fetches, before);
  now += 25_000;
  assert.ok((await source(header('new'))).some((k) => k.kid === 'new'), 'rotated key found');
  assert.is(fetches, before + 1);
  now += 31_000;
  await source(header(randomUUID()));
  await source(header(randomUUID()));
  assert.is(fetches, before + 2, 'forged kids cannot hammer the IdP');
});

test('IdP down: stale keys keep serving; with none it is a retryable 503, retried at most once a second', async () => {
  served = [rsaJwk('k')];
  let now = 9_000_000;
  const warm = jwksKeys(url, { ...slack, ttlMs: 1_000, now: () => now });
  await warm(header('k'));
  up = false;
  now += 5_000;
  assert.is((await warm(header('k'))).length, 1);

  const cold = jwksKeys(url, { ...slack, now: () => now });
  const before = fetches;
  for (let i = 0; i < 3; i++) {
    const err = await cold(header('k')).then(() => undefined, (e: unknown) => e as { code?: string });
    assert.is(err?.code, 'DEPENDENCY_UNAVAILABLE');
  }
  assert.is(fetches - before, 1);
  up = true;
  now += 1_500;
  assert.is((await cold(header('k'))).length, 1);
});

test.after(() => new Promise<void>((r) => idp.close(() => r())));
test.run();
