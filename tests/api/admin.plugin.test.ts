import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { actorList } from '../../src/api/schemas.ts';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
test.before(async () => { t = await routesServer(); });
test.after(async () => { await t.close(); });

const admin = () => t.as('operator-1', { admin: true });

async function actorOf(sub: string) {
  const res = await t.server.inject({ method: 'POST', url: '/v1/connections', headers: t.as(sub), payload: { platform: 'telegram', kind: 'user', method: 'qr' } });
  return body(res).id as string;
}

test('every /admin route is 403 FORBIDDEN without the admin scope and 401 without a token', async () => {
  const id = await actorOf(`u-${randomUUID()}`);
  for (const [method, url] of [['GET', '/admin/actors'], ['GET', `/admin/actors/${id}`], ['POST', `/admin/actors/${id}/restart`], ['GET', '/admin/audit']] as const) {
    const res = await t.server.inject({ method, url, headers: t.as() });
    assert.is(res.statusCode, 403, `${method} ${url}`);
    assert.is(body(res).error.code, 'FORBIDDEN');
    const other = await t.server.inject({ method, url, headers: t.as('x', {}) });
    assert.is(other.statusCode, 403);
    assert.is((await t.server.inject({ method, url })).statusCode, 401);
  }
  const scoped = await t.server.inject({ method: 'GET', url: '/admin/actors', headers: t.as('y') });
  assert.is(scoped.statusCode, 403);
});

test('GET /admin/actors lists actors of every owner with totals per state', async () => {
  const a = await actorOf(`u-${randomUUID()}`);
  const b = await actorOf(`u-${randomUUID()}`);
  const res = await t.server.inject({ method: 'GET', url: '/admin/actors', headers: admin() });
  assert.is(res.statusCode, 200);
  const tree = body(res);
  const ids = tree.items.map((x: { id: string }) => x.id);
  assert.ok(ids.includes(a) && ids.includes(b));
  assert.is(tree.totals['awaiting-qr'], tree.items.filter((x: { state: string }) => x.state === 'awaiting-qr').length);
  // The route does not validate its answer at run time (sample: 0, for 10,000 actors): the contract is held here.
  const { error } = actorList.validate(tree);
  assert.is(error, undefined, error?.message);
  assert.ok(tree.items.length >= 2);
});

test('GET /admin/actors streams many pages as one valid answer, gzip or not', async () => {
  // 1,234 actors: two full pages of 500 and a short one, with the page joins in the JSON.
  const many = Array.from({ length: 1234 }, (_, i) => ({
    id: randomUUID(), kind: 'user' as const, owner: `o-${i % 7}`, state: i % 3 ? 'active' : 'error', since: new Date(0).toISOString(),
    restarts: i, breaker: { state: 'closed' as const, failures: 0 }, memory: { bytes: i, budget: 50 * 1024 * 1024 }, shard: i % 4,
  }));
  const pages = t.supervisor.actorPages;
  t.supervisor.actorPages = function* (size: number) {
    for (let i = 0; i < many.length; i += size) yield many.slice(i, i + size);
  };
  try {
    const res = await t.server.inject({ method: 'GET', url: '/admin/actors', headers: admin() });
    assert.is(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const tree = body(res);
    assert.equal(tree.items.map((x: { id: string }) => x.id), many.map((x) => x.id));
    assert.equal(tree.totals, { error: 412, active: 822 });
    assert.is(actorList.validate(tree).error, undefined);
    const gz = await t.server.inject({ method: 'GET', url: '/admin/actors', headers: { ...admin(), 'accept-encoding': 'gzip' } });
    assert.is(gz.headers['content-encoding'], 'gzip');
    assert.equal(JSON.parse(gunzipSync(gz.rawPayload).toString()), tree);
  } finally {
    t.supervisor.actorPages = pages;
  }
});

test('GET /admin/actors/{id}: detail, 404 for unknown and malformed ids', async () => {
  const id = await actorOf(`u-${randomUUID()}`);
  const res = await t.server.inject({ method: 'GET', url: `/admin/actors/${id}`, headers: admin() });
  assert.is(res.statusCode, 200);
  const d = body(res);
  assert.is(d.id, id);
  assert.equal(d.transitions, []);
  for (const bad of [randomUUID(), 'nope', "'%20or%201=1--"]) {
    const r = await t.server.inject({ method: 'GET', url: `/admin/actors/${bad}`, headers: admin() });
    assert.is(r.statusCode, 404, bad);
    assert.is(body(r).error.code, 'NOT_FOUND');
  }
});

test('POST /admin/actors/{id}/restart → 202, counted, audited in the owner\'s trail; unknown → 404', async () => {
  const owner = `u-${randomUUID()}`;
  const id = await actorOf(owner);
  const res = await t.server.inject({ method: 'POST', url: `/admin/actors/${id}/restart`, headers: admin() });
  assert.is(res.statusCode, 202);
  assert.equal(body(res), { id, restarting: true });
  assert.is(body(await t.server.inject({ method: 'GET', url: `/admin/actors/${id}`, headers: admin() })).restarts, 1);
  const trail = body(await t.server.inject({ method: 'GET', url: '/v1/audit', headers: t.as(owner) })).items;
  assert.equal([trail[0].action, trail[0].actor, trail[0].target], ['actor.restarted', 'operator-1', id]);
  assert.is((await t.server.inject({ method: 'POST', url: `/admin/actors/${randomUUID()}/restart`, headers: admin() })).statusCode, 404);
  assert.is((await t.server.inject({ method: 'POST', url: `/admin/actors/${id}/restart`, headers: admin(), payload: { now: true } })).statusCode, 400);
});

test.run();
