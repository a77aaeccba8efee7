import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recordAudit } from '../../src/store/audit.ts';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
test.before(async () => { t = await routesServer(); });
test.after(async () => { await t.close(); });

const get = (url: string, headers: Record<string, string>) => t.server.inject({ method: 'GET', url, headers });

async function trail(owner: string, n: number) {
  for (let i = 0; i < n; i++) await recordAudit(t.sql, { owner, actor: owner, action: `test.step${i}`, target: `t${i}`, details: { i } });
}

test('GET /v1/audit: own entries only, newest first, pages by cursor without repeats', async () => {
  const alice = `u-${randomUUID()}`;
  const bob = `u-${randomUUID()}`;
  // 12 entries: ids cross from one digit to two, so an order by the id as text would show.
  await trail(alice, 12);
  await trail(bob, 3);
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const res = await get(`/v1/audit?limit=5${cursor ? `&cursor=${cursor}` : ''}`, t.as(alice));
    assert.is(res.statusCode, 200);
    const page = body(res);
    for (const e of page.items) {
      assert.equal(Object.keys(e).sort(), ['action', 'actor', 'at', 'details', 'id', 'target']);
      assert.is(e.actor, alice);
      seen.push(e.action);
    }
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  assert.is(pages, 3);
  assert.equal(seen, Array.from({ length: 12 }, (_, i) => `test.step${11 - i}`));
  assert.equal(body(await get('/v1/audit', t.as(`u-${randomUUID()}`))), { items: [] });
});

test('actions through the API land in the trail (connection by the supervisor, chat by the route)', async () => {
  const as = t.as();
  const conn = body(await t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'user', method: 'qr' } })).id;
  await t.server.inject({ method: 'POST', url: `/v1/connections/${conn}/chats`, headers: as, payload: { chat: '@audited_chan' } });
  const items = body(await get('/v1/audit', as)).items;
  assert.equal(items.map((e: { action: string }) => e.action), ['chat.added', 'connection.created']);
});

test('bad query → 400; a cursor of another shape is refused', async () => {
  const as = t.as();
  for (const q of ['limit=0', 'limit=101', 'limit=x', 'cursor=%27%20or%201%3D1%20--', `cursor=${Buffer.from('a1; drop table audit').toString('base64url')}`, 'owner=x']) {
    const res = await get(`/v1/audit?${q}`, as);
    assert.is(res.statusCode, 400, q);
    assert.is(body(res).error.code, 'VALIDATION_ERROR', q);
  }
});

test('GET /admin/audit: 403 without the admin scope; with it every owner, owner named, filter by owner', async () => {
  const alice = `u-${randomUUID()}`;
  await trail(alice, 2);
  const denied = await get('/admin/audit', t.as(alice));
  assert.is(denied.statusCode, 403);
  assert.is(body(denied).error.code, 'FORBIDDEN');
  const all = body(await get('/admin/audit?limit=100', t.as('ops', { admin: true })));
  assert.ok(new Set(all.items.map((e: { owner: string }) => e.owner)).size > 1, 'entries of several owners');
  const hers = body(await get(`/admin/audit?owner=${alice}`, t.as('ops', { admin: true })));
  assert.equal(hers.items.map((e: { owner: string; action: string }) => [e.owner, e.action]), [[alice, 'test.step1'], [alice, 'test.step0']]);
});

test.run();
