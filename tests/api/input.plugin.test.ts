// A NUL anywhere in a request (path, query, body value or key) is refused before any route runs:
// Postgres text and jsonb cannot hold one, and `?owner=%00` or a NUL in a body field used to make the
// query throw (500).
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
let as: Record<string, string>;
let admin: Record<string, string>;
let conn: string;

const nul = suite('NUL anywhere in a request');
nul.before(async () => {
  t = await routesServer({ messages: true });
  as = t.as();
  admin = t.as(`admin-${randomUUID()}`, { admin: true });
  conn = body(await t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { kind: 'bot', token: '4242:nul' } })).id;
});
nul.after(async () => { await t.close(); });

const refused = async (method: string, url: string, headers: Record<string, string>, payload: unknown, path: string) => {
  const res = await t.server.inject({ method, url, headers, ...(payload !== undefined && { payload: payload as object }) });
  assert.is(res.statusCode, 400, `${method} ${url} ${JSON.stringify(payload) ?? ''} → ${res.statusCode} ${res.payload.slice(0, 200)}`);
  assert.equal(body(res).error, {
    code: 'VALIDATION_ERROR', message: 'request validation failed',
    details: [{ path, message: 'must not contain NUL characters', type: 'string.nul' }],
  });
};

nul('?owner=%00 on /admin/audit (was 500) and a NUL in any query parameter → 400 naming it', async () => {
  await refused('GET', '/admin/audit?owner=%00', admin, undefined, 'query.owner');
  await refused('GET', '/admin/audit?owner=alice%00bob&limit=5', admin, undefined, 'query.owner');
  for (const url of ['/v1/connections?status=%00', '/v1/connections?cursor=a%00', '/v1/audit?cursor=%00', '/v1/messages?status=sent%00',
    `/v1/connections/${conn}/chats/${randomUUID()}?refresh=%00`, '/v1/connections?unknown%00key=1']) {
    const res = await t.server.inject({ method: 'GET', url, headers: as });
    assert.is(res.statusCode, 400, `${url} → ${res.statusCode}`);
    assert.is(body(res).error.details[0].type, 'string.nul');
  }
});

nul('a NUL in a body value or key, at any depth, at every POST route → 400 naming the field', async () => {
  const routes = ['/v1/connections', `/v1/connections/${conn}/code`, `/v1/connections/${conn}/password`, `/v1/connections/${conn}/chats`, '/v1/messages'];
  for (const url of routes) {
    await refused('POST', url, as, { password: 'pw\u0000', code: '1' }, 'password');
    await refused('POST', url, as, { ['key\u0000']: 1 }, 'key\u0000');
    await refused('POST', url, as, { a: [{ b: { c: 'x' } }, { b: ['ok', 'no\u0000'] }] }, 'a.1.b.1');
  }
  await refused('POST', '/v1/messages/batch', as, { messages: [{ connectionId: conn, chat: '@x_chan', text: 'a\u0000b' }] }, 'messages.0.text');
  await refused('POST', `/admin/actors/${conn}/restart`, admin, { note: '\u0000' }, 'note');
  // A key that also looks like a secret is redacted in the path it is named by.
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
  await refused('POST', '/v1/connections', as, { [`${jwt}\u0000`]: 1 }, '[REDACTED]\u0000');
});

nul('a NUL in a path parameter → 404 NOT_FOUND, as any malformed id', async () => {
  for (const [method, url] of [['GET', '/v1/connections/%00'], ['DELETE', `/v1/connections/${conn}%00`], ['GET', `/v1/connections/${conn}/chats/%00`],
    ['GET', '/v1/messages/%00'], ['GET', '/admin/actors/%00']]) {
    const res = await t.server.inject({ method: method!, url: url!, headers: url!.startsWith('/admin') ? admin : as });
    assert.is(res.statusCode, 404, `${method} ${url} → ${res.statusCode}`);
    assert.is(body(res).error.code, 'NOT_FOUND');
  }
});

nul('more than no schema takes: keys over 128 characters, objects over 256 fields, arrays over 1,000 elements, nesting over 32 → 400 before validation', async () => {
  const post = (payload: string) => t.server.inject({ method: 'POST', url: '/v1/connections', headers: { ...as, 'content-type': 'application/json' }, payload });
  const detailOf = async (payload: string) => {
    const res = await post(payload);
    assert.is(res.statusCode, 400, payload.slice(0, 60));
    assert.is(body(res).error.details?.length, 1, res.payload.slice(0, 300));
    return body(res).error.details[0] as { path: string; message: string; type: string };
  };
  const longKey = await detailOf(JSON.stringify({ kind: 'bot', ['k'.repeat(129)]: 1 }));
  assert.equal(longKey, { path: `${'k'.repeat(64)}…`, message: `"${'k'.repeat(64)}…" field names are at most 128 characters`, type: 'object.unknown' });
  // 128 characters reach the schema, which refuses the unknown field itself.
  const reached = await post(JSON.stringify({ kind: 'bot', token: '1:a', ['k'.repeat(128)]: 1 }));
  assert.equal(body(reached).error.details, [{ path: 'k'.repeat(64) + '…', message: `"${'k'.repeat(64)}…" is not allowed`, type: 'object.unknown' }]);
  assert.equal(await detailOf(JSON.stringify(Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, i])))),
    { path: 'payload', message: '"payload" at most 256 fields', type: 'object.max' });
  assert.equal(await detailOf(JSON.stringify({ kind: 'bot', token: Array.from({ length: 1001 }, () => 1) })),
    { path: 'token', message: '"token" at most 1000 elements', type: 'array.max' });
  const deep = await detailOf(`{"a":${'['.repeat(500_000)}"\\u0000"${']'.repeat(500_000)}}`);
  assert.equal(deep, { path: `a.${'0.'.repeat(30)}0`, message: `"0" nested deeper than 32 levels`, type: 'object.depth' });
  const nulAt31 = await detailOf(`{"a":${'['.repeat(30)}"\\u0000"${']'.repeat(30)}}`);
  assert.equal(nulAt31, { path: `a.${'0.'.repeat(29)}0`, message: 'must not contain NUL characters', type: 'string.nul' });
});

nul('nothing was stored by any refused request; ordinary non-ASCII text still passes', async () => {
  assert.is((await t.sql`select id from connections where owner in (select owner from connections where id = ${conn})`).length, 1);
  const ok = await t.server.inject({ method: 'GET', url: `/admin/audit?owner=${encodeURIComponent('ünïcödé 😀')}`, headers: admin });
  assert.is(ok.statusCode, 200);
});

nul.run();
