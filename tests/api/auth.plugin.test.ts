import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as HapiServer } from '@hapi/hapi';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { authenticateToken, callerOf } from '../../src/api/server.ts';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';
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

const good = (claims: Record<string, unknown> = {}, header?: object) =>
  sign({ sub: 'alice', iss: 'https://idp.test', aud: 'integration', exp: inSeconds(300), ...claims }, secret, 'HS256', header);
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

// A token signed over raw JSON text, for values JSON.stringify cannot write (1e999 parses as Infinity).
const rawSigned = (header: string, payload: string) => {
  const head = `${Buffer.from(header).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
};
const now = () => Math.floor(Date.now() / 1000);
const noIat = (exp: number) => rawSigned('{"alg":"HS256","typ":"JWT"}', JSON.stringify({ sub: 'alice', iss: 'https://idp.test', aud: 'integration', exp }));

hs('exp 1e999 (Infinity once parsed) → 401; the same token with a finite exp is accepted', async () => {
  const claims = (exp: string) => `{"sub":"alice","iss":"https://idp.test","aud":"integration","exp":${exp}}`;
  const header = '{"alg":"HS256","typ":"JWT"}';
  assert.is((await get('/v1/whoami', bearer(rawSigned(header, claims(String(now() + 300)))))).statusCode, 200, 'control');
  await refused(bearer(rawSigned(header, claims('1e999'))), 'invalid token');
});

hs('a lifetime beyond the maximum (24 h by default) → 401, from iat or, without iat, from now', async () => {
  await refused(bearer(good({ iat: now(), exp: now() + 86_400 + 60 })), 'invalid token');
  await refused(bearer(good({ iat: now() - 86_400, exp: now() + 60 })), 'invalid token'); // still valid for a minute, but issued for 24 h + 1 min
  await refused(bearer(noIat(now() + 7 * 86_400)), 'invalid token');
  await refused(bearer(noIat(Number.MAX_SAFE_INTEGER)), 'invalid token');
  assert.is((await get('/v1/whoami', bearer(good({ iat: now(), exp: now() + 86_400 })))).statusCode, 200, 'exactly 24 h');
  assert.is((await get('/v1/whoami', bearer(noIat(now() + 3600)))).statusCode, 200, 'no iat, 1 h');
});

hs('iat in the future beyond the 30 s skew → 401; within it, accepted', async () => {
  await refused(bearer(good({ iat: now() + 120, exp: now() + 300 })), 'invalid token');
  await refused(bearer(good({ iat: 'yesterday', exp: now() + 300 })), 'invalid token');
  assert.is((await get('/v1/whoami', bearer(good({ iat: now() + 10, exp: now() + 300 })))).statusCode, 200);
});

hs('a crit header (an extension this service does not implement) → 401', async () => {
  await refused(bearer(good({}, { crit: ['b64'], b64: true })), 'invalid token');
  await refused(bearer(good({}, { crit: ['http://example.com/ext'] })), 'invalid token');
  await refused(bearer(good({}, { crit: [] })), 'invalid token');
  assert.is((await get('/v1/whoami', bearer(good({}, { kid: 'k1' })))).statusCode, 200, 'other header fields are fine');
});

hs('JWT_MAX_LIFETIME_S is configurable', async () => {
  const week = await shellServer({ auth: { secret, maxLifetimeSec: 7 * 86_400 } });
  addRoutes(week.server);
  await week.server.initialize();
  const res = (exp: number) => week.server.inject({ url: '/v1/whoami', headers: bearer(sign({ sub: 'a', exp })) });
  assert.is((await res(now() + 6 * 86_400)).statusCode, 200);
  assert.is((await res(now() + 8 * 86_400)).statusCode, 401);
  await week.server.stop();
});

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

// ---------------------------------------------------------------------------------------------

const subs = suite('sub validation');
let routes: RoutesServer;
subs.before(async () => { routes = await routesServer(); });
subs.after(async () => { await routes.close(); });

const asSub = (sub: string) => bearer(sign({ sub, exp: inSeconds(300) }));
/** HS256 token over payload bytes as given, valid UTF-8 or not (Jwt.token.generate always encodes UTF-8). */
const rawToken = (payload: Buffer) => {
  const signed = `${b64({ alg: 'HS256', typ: 'JWT' })}.${payload.toString('base64url')}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
};

subs('lone surrogates no longer collapse two subs into one owner: both tokens are refused, nothing is created or seen', async () => {
  // '\ud800' and '\udc00' both reached Postgres as U+FFFD: B listed (and could delete) A's connection.
  const prefix = `collapse-${randomUUID()}-`;
  const [a, b, collapsed] = [`${prefix}\ud800`, `${prefix}\udc00`, `${prefix}\ufffd`];
  const created = await routes.server.inject({ method: 'POST', url: '/v1/connections', headers: asSub(a), payload: { platform: 'telegram', kind: 'bot', token: '12345:abc' } });
  assert.is(created.statusCode, 401, created.payload);
  assert.is((await routes.sql`select id from connections where owner = ${collapsed}`).length, 0);
  // A connection that a collapsed owner already holds stays out of reach of both lone-surrogate forms.
  const own = body(await routes.server.inject({ method: 'POST', url: '/v1/connections', headers: routes.as(), payload: { platform: 'telegram', kind: 'bot', token: '12346:abc' } })).id;
  await routes.sql`update connections set owner = ${collapsed} where id = ${own}`;
  for (const sub of [a, b]) {
    const list = await routes.server.inject({ method: 'GET', url: '/v1/connections', headers: asSub(sub) });
    assert.is(list.statusCode, 401);
    assert.is(body(list).error.code, 'UNAUTHORIZED');
    const del = await routes.server.inject({ method: 'DELETE', url: `/v1/connections/${own}`, headers: asSub(sub) });
    assert.is(del.statusCode, 401);
  }
  assert.is((await routes.sql`select id from connections where id = ${own}`).length, 1);
});

subs('a NUL in sub → 401 on every route (was a 500), and through authenticateToken (WebSocket)', async () => {
  const sub = `nul-${randomUUID()}\u0000`;
  for (const [method, url] of [['GET', '/v1/connections'], ['GET', '/v1/audit'], ['GET', '/v1/me/export'], ['POST', '/v1/connections'], ['DELETE', '/v1/me']]) {
    const res = await routes.server.inject({ method: method!, url: url!, headers: asSub(sub), ...(method === 'POST' && { payload: { kind: 'bot', token: '1:a' } }) });
    assert.is(res.statusCode, 401, `${method} ${url} → ${res.statusCode} ${res.payload}`);
    assert.is(body(res).error.code, 'UNAUTHORIZED');
  }
  const ws = await authenticateToken(routes.server, sign({ sub, exp: inSeconds(300) })).catch((e) => e);
  assert.equal([ws.code, ws.message], ['UNAUTHORIZED', 'invalid token']);
});

subs('control characters, invalid UTF-8 and more than 255 characters → 401; any well-formed sub up to 255 → 200', async () => {
  const refusedSubs = ['a\u0007b', 'tab\there', 'line\nbreak', 'del\u007f', 'c1\u0085', '\ud83d', 'x'.repeat(256), 'x'.repeat(10_240)];
  for (const sub of refusedSubs) {
    const res = await routes.server.inject({ method: 'GET', url: '/v1/connections', headers: asSub(sub) });
    assert.is(res.statusCode, 401, JSON.stringify(sub).slice(0, 40));
  }
  // Bytes 0xff / 0xfe are not UTF-8: both decoded to U+FFFD, one owner for two token bytes.
  for (const bad of [0xff, 0xfe]) {
    const payload = Buffer.concat([Buffer.from('{"sub":"bytes-'), Buffer.from([bad]), Buffer.from(`","exp":${inSeconds(300)}}`)]);
    const res = await routes.server.inject({ method: 'GET', url: '/v1/connections', headers: bearer(rawToken(payload)) });
    assert.is(res.statusCode, 401, `byte ${bad}`);
  }
  for (const sub of ['用户-😀-Ünïcödé', 'x'.repeat(255), 'user@example.com|tenant:42']) {
    const res = await routes.server.inject({ method: 'GET', url: '/v1/connections', headers: asSub(sub) });
    assert.is(res.statusCode, 200, sub.slice(0, 40));
  }
  const utf8 = await routes.server.inject({ method: 'GET', url: '/v1/connections', headers: bearer(rawToken(Buffer.from(JSON.stringify({ sub: 'ok-😀', exp: inSeconds(300) })))) });
  assert.is(utf8.statusCode, 200);
});

subs.run();
