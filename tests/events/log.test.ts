// GET /v1/events/log: the stored events as JSON pages, scoped to the caller.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendEvent, type StoredEvent } from '../../src/store/events.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { eventsServer, token } from './helpers.ts';

let db: TestDatabase;
let s: Awaited<ReturnType<typeof eventsServer>>;
test.before(async () => {
  db = await createTestDatabase();
  s = await eventsServer(db.sql);
});
test.after(async () => {
  await s.stop();
  await db.drop();
});

const get = async (sub: string, query: string) => {
  const r = await s.server.inject({ method: 'GET', url: `/v1/events/log${query}`, headers: { authorization: `Bearer ${token(sub)}` } });
  return { statusCode: r.statusCode, payload: r.payload, json: () => JSON.parse(r.payload) };
};

test('pages oldest first with nextSince until a short page; the envelope matches the socket\'s', async () => {
  const alice = `a-${randomUUID()}`;
  const written: StoredEvent[] = [];
  for (let i = 0; i < 7; i++) written.push(await appendEvent(db.sql, { customerId: alice, type: 'message.status', data: { i } }));
  await appendEvent(db.sql, { customerId: `b-${randomUUID()}`, type: 'message.status', data: {} });
  const seen: string[] = [];
  let since = '';
  for (let pages = 0; pages < 10; pages++) {
    const r = await get(alice, `?limit=3${since ? `&since=${since}` : ''}`);
    assert.is(r.statusCode, 200);
    const body = r.json();
    seen.push(...body.items.map((e: { id: string }) => e.id));
    if (!body.nextSince) {
      assert.ok(body.items.length < 3 || seen.length === 7);
      break;
    }
    assert.is(body.nextSince, String(body.items.at(-1).pos));
    since = body.nextSince;
  }
  assert.equal(seen, written.map((e) => e.id));
  const one = (await get(alice, `?since=${written[5]!.id}`)).json();
  assert.equal(one.items, [{
    id: written[6]!.id, pos: written[6]!.pos, type: 'message.status', at: written[6]!.occurredAt, occurredAt: written[6]!.occurredAt, data: { i: 6 },
  }]);
});

test('filters by type (one or several) and by connection', async () => {
  const alice = `a-${randomUUID()}`;
  const conn = await makeConnection(db.sql, alice);
  const other = await makeConnection(db.sql, alice);
  const c1 = await appendEvent(db.sql, { customerId: alice, type: 'connection.status', connectionId: conn, data: { id: conn } });
  const m1 = await appendEvent(db.sql, { customerId: alice, type: 'message.status', connectionId: other, data: {} });
  const r1 = await appendEvent(db.sql, { customerId: alice, type: 'message.received', connectionId: conn, data: {} });
  const ids = async (q: string) => (await get(alice, q)).json().items.map((e: { id: string }) => e.id);
  assert.equal(await ids('?type=message.status'), [m1.id]);
  assert.equal(await ids('?type=message.status&type=message.received'), [m1.id, r1.id]);
  assert.equal(await ids(`?connectionId=${conn}`), [c1.id, r1.id]);
  assert.equal(await ids(`?connectionId=${conn}&type=connection.status`), [c1.id]);
  const page = (await get(alice, `?connectionId=${conn}`)).json();
  assert.is(page.items[0].connectionId, conn);
});

test('another caller\'s connection or event id is 404; malformed input is 400, never 500', async () => {
  const alice = `a-${randomUUID()}`;
  const bob = `b-${randomUUID()}`;
  const bobsConn = await makeConnection(db.sql, bob);
  const bobsEvent = await appendEvent(db.sql, { customerId: bob, type: 'message.status', connectionId: bobsConn, data: { secret: 'no' } });
  const r404 = await get(alice, `?connectionId=${bobsConn}`);
  assert.is(r404.statusCode, 404);
  assert.is(r404.json().error.code, 'NOT_FOUND');
  assert.is((await get(alice, `?connectionId=${randomUUID()}`)).statusCode, 404);
  const e404 = await get(alice, `?since=${bobsEvent.id}`);
  assert.is(e404.statusCode, 404);
  assert.not.match(e404.payload, 'secret');
  assert.equal((await get(alice, '')).json().items, [], 'bob\'s events are not listed');
  for (const q of ['?since=abc', '?since=-1', `?since=${'9'.repeat(16)}`, '?limit=0', '?limit=1001', '?limit=x', '?type=nope', '?connectionId=zzz', '?other=1']) {
    const r = await get(alice, q);
    assert.is(r.statusCode, 400, q);
    assert.is(r.json().error.code, 'VALIDATION_ERROR', q);
  }
  const anon = await s.server.inject({ method: 'GET', url: '/v1/events/log' });
  assert.is(anon.statusCode, 401);
});

test.run();
