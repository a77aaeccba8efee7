// Hostile input against every route of the resource plugins: random JSON bodies (fast-check) at
// every POST route, and SQL-injection strings in every string field, query parameter and path
// parameter. Only 4xx answers with an error code come back, never a 500, and the tables survive.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
let as: Record<string, string>;
let conn: string; // the caller's connection, awaiting a code
let chat: string; // a chat of that connection

const injections = [
  "' or 1=1 --",
  '"; drop table connections; --',
  "'); delete from audit; --",
  "1; select pg_sleep(5)",
  "\\x00' union select * from connection_secrets --",
  '${sql}`drop table chats`',
];

const tableCounts = async () => (await t.sql<{ c: number; ch: number; a: number; s: number }[]>`
  select (select count(*) from connections)::int as c, (select count(*) from chats)::int as ch,
         (select count(*) from audit)::int as a, (select count(*) from connection_secrets)::int as s`)[0]!;

async function setup() {
  t = await routesServer();
  as = t.as();
  conn = body(await t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'user', phone: '+12015550123' } })).id;
  chat = body(await t.server.inject({ method: 'POST', url: `/v1/connections/${conn}/chats`, headers: as, payload: { chat: '@fuzz_chan' } })).id;
  await t.sql`insert into connection_secrets (connection_id, name, ciphertext) values (${conn}, 'session', 'local:v1:canary')`;
}

const postRoutes = () => [
  '/v1/connections',
  `/v1/connections/${conn}/code`,
  `/v1/connections/${conn}/password`,
  `/v1/connections/${conn}/reconnect`,
  `/v1/connections/${conn}/chats`,
  `/v1/connections/${randomUUID()}/chats`,
  `/admin/actors/${conn}/restart`,
];

function assertClientError(res: { statusCode: number; payload: string }, what: string) {
  assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${what} → ${res.statusCode} ${res.payload.slice(0, 200)}`);
  const code = body(res).error?.code;
  assert.type(code, 'string', what);
}

// ---------------------------------------------------------------------------------------------

const fuzz = suite('random bodies at every POST route');
fuzz.before(setup);
fuzz.after(async () => { await t.close(); });

fuzz('random JSON (values, documents, near-valid objects) → never 5xx; errors carry a code', async () => {
  const admin = t.as('fuzz-admin', { admin: true });
  const nearValid = fc.record({
    platform: fc.oneof(fc.constant('telegram'), fc.string(), fc.integer()),
    kind: fc.oneof(fc.constantFrom('user', 'bot'), fc.jsonValue()),
    method: fc.oneof(fc.constantFrom('phone', 'qr'), fc.string()),
    phone: fc.oneof(fc.string(), fc.constant('+12015550123'), fc.integer()),
    token: fc.oneof(fc.string(), fc.constant('1:a'), fc.jsonValue()),
    code: fc.oneof(fc.stringMatching(/^\d{1,9}$/), fc.jsonValue()),
    password: fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue()),
    chat: fc.oneof(fc.string(), fc.constantFrom('@fuzz_chan', '-100123', 't.me/+abcdefgh12'), fc.jsonValue()),
    requireAdmin: fc.jsonValue(),
    __proto__: fc.jsonValue(),
  }, { requiredKeys: [] });
  const bodies = fc.oneof(
    fc.json().map((s) => ({ raw: s })),
    fc.jsonValue().map((v) => ({ raw: JSON.stringify(v) })),
    fc.anything().map((v) => ({ raw: JSON.stringify(v) ?? 'undefined' })),
    nearValid.map((v) => ({ raw: JSON.stringify(v) })),
    // Valid bodies of some route, sent to any route, so answers past validation (404, 409, 422) show up too.
    fc.constantFrom(
      { platform: 'telegram', kind: 'user', method: 'qr' }, { kind: 'bot', token: '0:refused' }, { code: '12345' }, { code: '00000' },
      { password: 'pw' }, { chat: '@fuzz_chan' }, { chat: '@missing_chan' }, { chat: '@x_chan', requireAdmin: true }, {},
    ).map((v) => ({ raw: JSON.stringify(v) })),
    fc.string().map((s) => ({ raw: s })), // mostly not JSON at all
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...postRoutes()), bodies, async (url, { raw }) => {
      const headers = { ...(url.startsWith('/admin') ? admin : as), 'content-type': 'application/json' };
      const res = await t.server.inject({ method: 'POST', url, headers, payload: raw });
      assert.ok(res.statusCode < 500, `${url} ${raw.slice(0, 200)} → ${res.statusCode} ${res.payload.slice(0, 200)}`);
      if (res.statusCode >= 400) assertClientError(res, `${url} ${raw.slice(0, 80)}`);
    }),
    { numRuns: 600 },
  );
  // Bodies that are not JSON objects never pass validation.
  for (const url of postRoutes()) {
    for (const raw of ['[]', '"text"', '42', 'true', '{"a":', '\u0000', '{"__proto__":{"admin":true}}']) {
      const res = await t.server.inject({ method: 'POST', url, headers: { ...(url.startsWith('/admin') ? admin : as), 'content-type': 'application/json' }, payload: raw });
      assertClientError(res, `${url} ${raw}`);
    }
  }
  const live = await t.server.inject('/health/live');
  assert.is(live.statusCode, 200);
  assert.is(body(await t.server.inject({ method: 'GET', url: `/v1/connections/${conn}`, headers: as })).id, conn);
});

fuzz.run();

// ---------------------------------------------------------------------------------------------

const sqli = suite('SQL injection strings');
sqli.before(setup);
sqli.after(async () => { await t.close(); });

sqli('in every body field, query parameter and path parameter → 4xx; tables and rows intact; no 5xx', async () => {
  const before = await tableCounts();
  const admin = t.as('sqli-admin', { admin: true });
  for (const s of injections) {
    const e = encodeURIComponent(s);
    const requests: [string, string, unknown, Record<string, string>][] = [
      ['POST', '/v1/connections', { platform: 'telegram', kind: 'user', phone: s }, as],
      ['POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: s }, as],
      ['POST', '/v1/connections', { platform: s, kind: 'user', phone: '+12015550123' }, as],
      ['POST', '/v1/connections', { platform: 'telegram', kind: s }, as],
      ['POST', '/v1/connections', { platform: 'telegram', kind: 'user', method: s }, as],
      ['POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: `1:${s}` }, as],
      ['POST', `/v1/connections/${conn}/code`, { code: s }, as],
      ['POST', `/v1/connections/${conn}/chats`, { chat: s }, as],
      ['POST', `/v1/connections/${conn}/chats`, { chat: `@${s}` }, as],
      ['POST', `/v1/connections/${conn}/chats`, { chat: `https://t.me/${s}` }, as],
      ['POST', `/v1/connections/${conn}/chats`, { chat: '@fuzz_chan', requireAdmin: s }, as],
      ['GET', `/v1/connections?status=${e}`, undefined, as],
      ['GET', `/v1/connections?platform=${e}`, undefined, as],
      ['GET', `/v1/connections?kind=${e}`, undefined, as],
      ['GET', `/v1/connections?limit=${e}`, undefined, as],
      ['GET', `/v1/connections?cursor=${e}`, undefined, as],
      ['GET', `/v1/connections?cursor=${Buffer.from(`${s}|${conn}`).toString('base64url')}`, undefined, as],
      ['GET', `/v1/connections/${conn}/chats/${chat}?refresh=${e}`, undefined, as],
      ['GET', `/v1/audit?cursor=${e}`, undefined, as],
      ['GET', `/v1/audit?cursor=${Buffer.from(`a${s}`).toString('base64url')}`, undefined, as],
      ['GET', `/v1/audit?limit=${e}`, undefined, as],
      ['GET', `/admin/audit?cursor=${e}`, undefined, admin],
      ['GET', `/v1/connections/${e}`, undefined, as],
      ['POST', `/v1/connections/${e}/code`, { code: '12345' }, as],
      ['POST', `/v1/connections/${e}/password`, { password: 'x' }, as],
      ['GET', `/v1/connections/${e}/qr`, undefined, as],
      ['POST', `/v1/connections/${e}/reconnect`, undefined, as],
      ['DELETE', `/v1/connections/${e}`, undefined, as],
      ['POST', `/v1/connections/${e}/chats`, { chat: '@fuzz_chan' }, as],
      ['GET', `/v1/connections/${e}/chats`, undefined, as],
      ['GET', `/v1/connections/${conn}/chats/${e}`, undefined, as],
      ['DELETE', `/v1/connections/${conn}/chats/${e}`, undefined, as],
      ['GET', `/admin/actors/${e}`, undefined, admin],
      ['POST', `/admin/actors/${e}/restart`, undefined, admin],
    ];
    for (const [method, url, payload, headers] of requests) {
      const res = await t.server.inject({ method, url, headers, ...(payload !== undefined && { payload: payload as object }) });
      assertClientError(res, `${method} ${url} ${JSON.stringify(payload) ?? ''}`);
    }
    // Free-text fields that are legitimately any string are passed on as data, never as SQL.
    const pw = await t.server.inject({ method: 'POST', url: `/v1/connections/${conn}/password`, headers: as, payload: { password: s } });
    assert.is(pw.statusCode, 409, 'not awaiting the password: the string was data');
    const owner = await t.server.inject({ method: 'GET', url: `/admin/audit?owner=${e}`, headers: admin });
    assert.is(owner.statusCode, 200);
    assert.equal(body(owner).items, []);
    const asSub = await t.server.inject({ method: 'GET', url: '/v1/connections', headers: t.as(s) });
    assert.equal(body(asSub).items, [], 'a sub that looks like SQL is just an owner without rows');
  }
  const after = await tableCounts();
  assert.equal(after, before);
  const [secret] = await t.sql<{ ciphertext: string }[]>`select ciphertext from connection_secrets where connection_id = ${conn}`;
  assert.is(secret?.ciphertext, 'local:v1:canary');
  assert.is(body(await t.server.inject({ method: 'GET', url: `/v1/connections/${conn}/chats/${chat}`, headers: as })).id, chat);
  assert.is((await t.server.inject('/health/live')).statusCode, 200);
});

sqli.run();
