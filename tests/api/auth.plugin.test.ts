import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as HapiServer } from '@hapi/hapi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { authenticateToken, callerOf } from '../../src/api/server.ts';
import { bearer, inSeconds, secret, shellServer, sign } from './shell-server.ts';

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const addRoutes = (server: HapiServer) => {
  server.route({ method: 'GET', path: '/v1/whoami', handler: (r) => callerOf(r) });
  server.route({ method: 'GET', path: '/admin/ping', handler: (r) => callerOf(r) });
  // An /admin route whose author forgot auth entirely must still be closed.
  server.route({ method: 'GET', path: '/admin/open', options: { auth: false }, handler: () => ({ leaked: true }) });
};

const hs = suite('HS256');
let srv: Awaited<ReturnType<typeof shellServer>>;
hs.before(async () => {
  srv = await shellServer({ auth: { secret, issuer: 'https://idp.test', audience: 'integration' } });
  addRoutes(srv.server);
  await srv.server.initialize();
});
hs.after(() => srv.server.stop());

const good = (claims: Record<string, unknown> = {}) => sign({ sub: 'alice', iss: 'https://idp.test', aud: 'integration', exp: inSeconds(300), ...claims });
const get = (url: string, headers: Record<string, string> = {}) => srv.server.inject({ method: 'GET', url, headers });
const refused = async (headers: Record<string, string>, message: string) => {
  const res = await get('/v1/whoami', headers);
  assert.is(res.statusCode, 401);
  assert.equal(res.result, { error: { code: 'UNAUTHORIZED', message } });
  assert.not.match(res.headers['www-authenticate'] as string, /signature|issuer|aud|iss/i);
};

hs('a valid token names the caller', async () => {
  const res = await get('/v1/whoami', bearer(good({ scope: 'read write' })));
  assert.is(res.statusCode, 200);
  assert.equal(res.result, { sub: 'alice', scopes: ['read', 'write'], isAdmin: false });
});

hs('scope may be an array', async () => {
  const res = await get('/v1/whoami', bearer(good({ scope: ['admin', 'x'] })));
  assert.equal(res.result, { sub: 'alice', scopes: ['admin', 'x'], isAdmin: true });
});

hs('expired token → 401 "token expired"', () => refused(bearer(good({ exp: inSeconds(-120) })), 'token expired'));
hs('token without exp → 401', () => refused(bearer(sign({ sub: 'alice', iss: 'https://idp.test', aud: 'integration' })), 'invalid token'));
hs('wrong key → 401', () => refused(bearer(sign({ sub: 'alice', iss: 'https://idp.test', aud: 'integration', exp: inSeconds(300) }, 'another-secret-of-sufficient-length-xx')), 'invalid token'));
hs('wrong issuer → 401', () => refused(bearer(good({ iss: 'https://evil.test' })), 'invalid token'));
hs('wrong audience → 401', () => refused(bearer(good({ aud: 'someone-else' })), 'invalid token'));
hs('alg none → 401', () => refused(bearer(`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', iss: 'https://idp.test', aud: 'integration', exp: inSeconds(300) })}.`), 'invalid token'));
hs('unknown alg → 401', () => refused(bearer(`${b64({ alg: 'HS999', typ: 'JWT' })}.${b64({ sub: 'alice', exp: inSeconds(300) })}.abc`), 'invalid token'));
hs('missing header → 401', () => refused({}, 'authentication required'));
hs('other scheme → 401', () => refused({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, 'authentication required'));
hs('malformed token → 401', () => refused(bearer('not-a.jwt'), 'invalid token'));
hs('missing sub → 401', () => refused(bearer(good({ sub: undefined })), 'invalid token'));
hs('empty sub → 401', () => refused(bearer(good({ sub: '' })), 'invalid token'));

hs('/admin without the admin scope → 403, with it → 200', async () => {
  const denied = await get('/admin/ping', bearer(good({ scope: 'read' })));
  assert.is(denied.statusCode, 403);
  assert.is((denied.result as any).error.code, 'FORBIDDEN');
  const allowed = await get('/admin/ping', bearer(good({ scope: 'read admin' })));
  assert.is(allowed.statusCode, 200);
  assert.is((allowed.result as any).isAdmin, true);
});

hs('an /admin route with auth disabled is still closed', async () => {
  const res = await get('/admin/open');
  assert.is(res.statusCode, 403);
  assert.is((res.result as any).error.code, 'FORBIDDEN');
});

hs('authenticateToken applies the same rules outside a request (WebSocket upgrade)', async () => {
  assert.equal(await authenticateToken(srv.server, good({ scope: 'admin' })), { sub: 'alice', scopes: ['admin'], isAdmin: true });
  const expired = await authenticateToken(srv.server, good({ exp: inSeconds(-120) })).catch((e) => e);
  assert.equal([expired.code, expired.message], ['UNAUTHORIZED', 'token expired']);
  const wrongIssuer = await authenticateToken(srv.server, good({ iss: 'https://evil.test' })).catch((e) => e);
  assert.equal([wrongIssuer.code, wrongIssuer.message], ['UNAUTHORIZED', 'invalid token']);
  // The helper's route is internal: not reachable over HTTP.
  const res = await get('/_internal/caller', bearer(good()));
  assert.is(res.statusCode, 404);
});

hs('the token never reaches the log', async () => {
  const token = good({ exp: inSeconds(-120) });
  await get('/v1/whoami', bearer(token));
  await get('/v1/whoami', bearer(good()));
  const all = srv.lines.join('\n');
  assert.ok(all.includes('/v1/whoami'));
  assert.not.ok(all.includes(token.split('.')[2]!));
  assert.not.ok(/eyJ[\w-]+\.eyJ/.test(all));
});

hs.run();

// JWKS: RS256 and ES256 keys served from a loopback HTTP server, as an identity provider would.
const jwks = suite('JWKS');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaKid = randomUUID();
const ecKid = randomUUID();
let idp: Server;
let fetches = 0;
let idpDown = false;
let api: Awaited<ReturnType<typeof shellServer>>;
const pem = (k: typeof rsa.privateKey) => k.export({ type: 'pkcs8', format: 'pem' }).toString();

jwks.before(async () => {
  idp = createHttpServer((_req, res) => {
    fetches++;
    if (idpDown) { res.writeHead(503).end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      keys: [
        { ...rsa.publicKey.export({ format: 'jwk' }), kid: rsaKid, use: 'sig', alg: 'RS256' },
        { ...ec.publicKey.export({ format: 'jwk' }), kid: ecKid, use: 'sig' },
      ],
    }));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  const { port } = idp.address() as AddressInfo;
  api = await shellServer({ auth: { jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json` } });
  addRoutes(api.server);
  await api.server.initialize();
});
jwks.after(async () => {
  await api.server.stop();
  await new Promise((r) => idp.close(r));
});

const whoami = (token: string) => api.server.inject({ method: 'GET', url: '/v1/whoami', headers: bearer(token) });

jwks('RS256 token signed by the IdP key is accepted', async () => {
  const res = await whoami(sign({ sub: 'rsa-user', exp: inSeconds(300) }, pem(rsa.privateKey), 'RS256', { kid: rsaKid }));
  assert.is(res.statusCode, 200);
  assert.is((res.result as any).sub, 'rsa-user');
});

jwks('ES256 token signed by the IdP key is accepted', async () => {
  const res = await whoami(sign({ sub: 'ec-user', exp: inSeconds(300) }, pem(ec.privateKey), 'ES256', { kid: ecKid }));
  assert.is(res.statusCode, 200);
  assert.is((res.result as any).sub, 'ec-user');
});

jwks('a token signed by another RSA key with the same kid is refused', async () => {
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const res = await whoami(sign({ sub: 'mallory', exp: inSeconds(300) }, pem(other.privateKey), 'RS256', { kid: rsaKid }));
  assert.is(res.statusCode, 401);
});

jwks('HS256 signed with the public key (algorithm confusion) is refused', async () => {
  const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const res = await whoami(sign({ sub: 'mallory', exp: inSeconds(300) }, publicPem, 'HS256', { kid: rsaKid }));
  assert.is(res.statusCode, 401);
});

jwks('keys are cached: many requests, one fetch; an unknown kid is refused', async () => {
  const before = fetches;
  for (let i = 0; i < 5; i++) await whoami(sign({ sub: 'rsa-user', exp: inSeconds(300) }, pem(rsa.privateKey), 'RS256', { kid: rsaKid }));
  assert.is(fetches - before, 0);
  const res = await whoami(sign({ sub: 'x', exp: inSeconds(300) }, pem(rsa.privateKey), 'RS256', { kid: 'unknown-kid' }));
  assert.is(res.statusCode, 401);
});

jwks('cached keys keep working while the IdP is down', async () => {
  idpDown = true;
  const res = await whoami(sign({ sub: 'rsa-user', exp: inSeconds(300) }, pem(rsa.privateKey), 'RS256', { kid: rsaKid }));
  idpDown = false;
  assert.is(res.statusCode, 200);
});

jwks.run();

const down = suite('JWKS unreachable');
down('no keys ever loaded → 503 DEPENDENCY_UNAVAILABLE, not 401 or 500', async () => {
  const closed = createHttpServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const { port } = closed.address() as AddressInfo;
  await new Promise((r) => closed.close(r));
  const s = await shellServer({ auth: { jwksUrl: `http://127.0.0.1:${port}/jwks` } });
  addRoutes(s.server);
  await s.server.initialize();
  const res = await s.server.inject({ method: 'GET', url: '/v1/whoami', headers: bearer(sign({ sub: 'a', exp: inSeconds(60) }, pem(rsa.privateKey), 'RS256', { kid: rsaKid })) });
  await s.server.stop();
  assert.is(res.statusCode, 503);
  assert.is((res.result as any).error.code, 'DEPENDENCY_UNAVAILABLE');
});
down.run();
