// Calls that need a connection's running actor (chats, reconnect, GET /admin/actors/{id}, its
// restart), made at a node that does not hold its shard: two daemon processes on one database, the
// emulator's Bot API behind them. The non-owner passes the
// call to the owner over POST /internal/forward (signed) and answers what the owner answered; an
// unsigned, forged, stale or misaddressed internal call is refused; with the owner unreachable the
// caller gets 503 with Retry-After as before.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mintToken } from '../../src/auth/token.ts';
import { forwardingKey, sign, signatureHeader, timestampHeader, verify } from '../../src/cluster/forward.ts';
import { shardOf } from '../../src/shard.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { clusterView, spawnDaemon, stopDaemon, type Daemon } from '../helpers/cluster-daemons.ts';

const shards = 4;
let emu: Emulator;
let db: TestDatabase;
let dataDir: string;
let a: Daemon;
let b: Daemon;
const keyringKey = randomBytes(32);
const secret = randomBytes(32).toString('base64url');
const owner = `fwd-${randomUUID()}`;
const token = mintToken({ secret, sub: owner, ttlSeconds: 3600 });
const admin = mintToken({ secret, sub: 'fwd-admin', scopes: ['admin'], ttlSeconds: 3600 });
const key = forwardingKey({ keyringKey })!;

test.before(async () => {
  [emu, db] = await Promise.all([startEmulator(), createTestDatabase()]);
  dataDir = mkdtempSync(join(tmpdir(), 'forward-'));
  const env = {
    DATABASE_URL: db.url, DATA_DIR: dataDir, KEYRING_KEY: keyringKey.toString('base64'), JWT_SECRET: secret,
    HOST: '127.0.0.1', LOG_LEVEL: process.env.CLUSTER_LOG ?? 'error', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'fwd', TELEGRAM_DC: emu.mtproto,
    TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: String(shards),
    LEASE_TTL_MS: '6000', LEASE_DEADLINE_MS: '3600', LEASE_RENEW_MS: '600', RATE_LIMIT_IP: '0', LOG_TESTS: '1',
  };
  a = await spawnDaemon('fa', env);
  b = await spawnDaemon('fb', env);
  await until(async () => (await clusterView(a, admin)).nodes.every((n) => n.shards.length === shards / 2) && (await clusterView(a, admin)).nodes.length === 2, 'an even split');
});

test.after(async () => {
  for (const d of [a, b]) if (d) await stopDaemon(d, 'SIGKILL');
  await emu?.stop();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function until(fn: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${a?.out.slice(-20).join('')}\n${b?.out.slice(-20).join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function call(d: Daemon, method: string, path: string, body?: unknown, bearer = token): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(d.url + path, {
    method, headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

// A bot connection and the two daemons in the roles of owner and non-owner of its shard.
async function botOn(): Promise<{ id: string; ownerNode: Daemon; other: Daemon; botId: number }> {
  const bot = emu.createBot({ username: `fw${process.pid}${randomUUID().slice(0, 6)}_bot` });
  const created = await call(a, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(created.status, 201);
  const id = created.json.id as string;
  await until(async () => (await call(a, 'GET', `/v1/connections/${id}`)).json.status === 'active', 'the bot active on its owner');
  const holder = (await clusterView(a, admin)).shards.find((s) => s.shard === shardOf(id, shards))!.owner;
  const ownerNode = holder === 'fa' ? a : b;
  return { id, ownerNode, other: ownerNode === a ? b : a, botId: bot.botId };
}

test('owner-only calls at the non-owner answer as the owner does: chat check, reconnect, actor detail, admin restart', async () => {
  const { id, ownerNode, other, botId } = await botOn();
  const username = `fwc${process.pid}${randomUUID().slice(0, 6)}`;
  emu.createChat({ type: 'channel', title: username, username, members: [{ id: botId, role: 'admin', rights: { postMessages: true } }] });

  // The live check (Telegram's answer about the bot's rights) ran on the owner.
  const atOther = await call(other, 'POST', `/v1/connections/${id}/chats`, { chat: `@${username}` });
  assert.is(atOther.status, 201, JSON.stringify(atOther.json));
  assert.is(atOther.json.isAdmin, true);
  assert.is(atOther.json.canSend, true);
  const atOwner = await call(ownerNode, 'POST', `/v1/connections/${id}/chats`, { chat: `@${username}` });
  const { checkedAt: _a, ...sameAtOwner } = atOwner.json;
  const { checkedAt: _b, ...sameAtOther } = atOther.json;
  assert.equal(sameAtOther, sameAtOwner, 'the same chat as the owner finds');

  const missing = await call(other, 'POST', `/v1/connections/${id}/chats`, { chat: '@nobody_here_at_all' });
  const missingAtOwner = await call(ownerNode, 'POST', `/v1/connections/${id}/chats`, { chat: '@nobody_here_at_all' });
  assert.is(missing.status, missingAtOwner.status, 'the owner\'s refusal comes back as it is');
  assert.equal(missing.json.error.code, missingAtOwner.json.error.code);

  const reconnect = await call(other, 'POST', `/v1/connections/${id}/reconnect`);
  assert.is(reconnect.status, 202, JSON.stringify(reconnect.json));
  assert.is(reconnect.json.id, id);
  await until(async () => (await call(a, 'GET', `/v1/connections/${id}`)).json.status === 'active', 'active again after the reconnect');

  // One actor's detail lives on the owner: the non-owner answers it as the owner does.
  const detail = await call(other, 'GET', `/admin/actors/${id}`, undefined, admin);
  assert.is(detail.status, 200, JSON.stringify(detail.json));
  assert.is(detail.json.id, id);
  assert.is(detail.json.node, ownerNode.name, 'the owner\'s actor');
  assert.ok(Array.isArray(detail.json.transitions));
  assert.is((await call(other, 'GET', `/admin/actors/${randomUUID()}`, undefined, admin)).status, 404, 'no such actor anywhere');
  assert.is((await call(other, 'GET', `/admin/actors/${id}`)).status, 403, 'the admin scope still decides');

  const restart = await call(other, 'POST', `/admin/actors/${id}/restart`, undefined, admin);
  assert.is(restart.status, 202, JSON.stringify(restart.json));
  assert.equal(restart.json, { id, restarting: true });
  const audit = await db.sql`select 1 from audit where target = ${id} and action = 'actor.restarted'`;
  assert.is(audit.length, 1, 'restarted once, by the owner');

  // Another owner's connection stays not found through the forward (the owner checks the token).
  const stranger = mintToken({ secret, sub: `other-${randomUUID()}`, ttlSeconds: 600 });
  const foreign = await call(other, 'POST', `/v1/connections/${id}/reconnect`, undefined, stranger);
  assert.is(foreign.status, 404);
});

test('the owner unreachable: 503 DEPENDENCY_UNAVAILABLE with Retry-After', async () => {
  const { id, ownerNode, other } = await botOn();
  const [row] = await db.sql<{ url: string }[]>`select url from cluster_nodes where id = ${ownerNode.name}`;
  await db.sql`update cluster_nodes set url = 'http://127.0.0.1:9' where id = ${ownerNode.name}`;
  try {
    const res = await call(other, 'POST', `/v1/connections/${id}/reconnect`);
    assert.is(res.status, 503);
    assert.is(res.json.error.code, 'DEPENDENCY_UNAVAILABLE');
    assert.is(res.headers.get('retry-after'), '1');
  } finally {
    await db.sql`update cluster_nodes set url = ${row!.url} where id = ${ownerNode.name}`;
  }
});

test('GET /admin/actors lists every live node\'s actors; a node that does not answer is named', async () => {
  const byNode = new Map<string, string[]>();
  for (let i = 0; i < 12 && !(byNode.has('fa') && byNode.has('fb')); i++) {
    const { id, ownerNode } = await botOn();
    byNode.set(ownerNode.name, [...(byNode.get(ownerNode.name) ?? []), id]);
  }
  assert.ok(byNode.has('fa') && byNode.has('fb'), 'bots on both nodes');
  const every = [...byNode.values()].flat();
  for (const d of [a, b]) {
    const list = await call(d, 'GET', '/admin/actors', undefined, admin);
    assert.is(list.status, 200);
    const items = list.json.items as { id: string; node: string }[];
    for (const id of every) assert.ok(items.some((x) => x.id === id), `${d.name} lists ${id}`);
    for (const [node, ids] of byNode) for (const id of ids) assert.is(items.find((x) => x.id === id)!.node, node, 'each named with its node');
    assert.is(new Set(items.map((x) => x.id)).size, items.length, 'none listed twice');
    assert.is(Object.values(list.json.totals as Record<string, number>).reduce((x, y) => x + y, 0), items.length, 'totals over both nodes');
    assert.is(list.json.unreachableNodes, undefined);
  }
  const [row] = await db.sql<{ url: string }[]>`select url from cluster_nodes where id = 'fb'`;
  await db.sql`update cluster_nodes set url = 'http://127.0.0.1:9' where id = 'fb'`;
  try {
    const list = await call(a, 'GET', '/admin/actors', undefined, admin);
    assert.is(list.status, 200);
    assert.equal(list.json.unreachableNodes, ['fb']);
    assert.ok((list.json.items as { node: string }[]).every((x) => x.node === 'fa'), 'only what answered');
  } finally {
    await db.sql`update cluster_nodes set url = ${row!.url} where id = 'fb'`;
  }
  const denied = await call(b, 'GET', '/admin/actors');
  assert.is(denied.status, 403, 'the admin scope still decides');
});

test('an unsigned, forged, stale or misaddressed internal call is refused; a signed one runs', async () => {
  const { id } = await botOn();
  const body = (node: string) => JSON.stringify({ node, method: 'GET', url: `/v1/connections/${id}`, headers: { authorization: `Bearer ${token}` } });
  const post = (headers: Record<string, string>, b: string) => fetch(`${a.url}/internal/forward`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: b });
  const now = Date.now();

  const unsigned = await post({}, body('fa'));
  assert.is(unsigned.status, 401);
  assert.is(((await unsigned.json()) as any).error.code, 'UNAUTHORIZED');
  const forged = await post({ [timestampHeader]: String(now), [signatureHeader]: sign(randomBytes(32), now, body('fa')) }, body('fa'));
  assert.is(forged.status, 401, 'signed with another key');
  const tampered = await post({ [timestampHeader]: String(now), [signatureHeader]: sign(key, now, body('fa')) }, body('fa').replace('GET', 'PUT'));
  assert.is(tampered.status, 401, 'a body changed after signing');
  const stale = now - 60_000;
  const old = await post({ [timestampHeader]: String(stale), [signatureHeader]: sign(key, stale, body('fa')) }, body('fa'));
  assert.is(old.status, 401, 'a minute old');
  const elsewhere = await post({ [timestampHeader]: String(now), [signatureHeader]: sign(key, now, body('fb')) }, body('fb'));
  assert.is(elsewhere.status, 400, 'meant for another node');
  const garbage = await post({ [timestampHeader]: String(now), [signatureHeader]: sign(key, now, 'not json') }, 'not json');
  assert.is(garbage.status, 400);

  const signed = await post({ [timestampHeader]: String(now), [signatureHeader]: sign(key, now, body('fa')) }, body('fa'));
  assert.is(signed.status, 200);
  const answer = (await signed.json()) as { status: number; body: string };
  assert.is(answer.status, 200);
  assert.is((JSON.parse(answer.body) as { id: string }).id, id);
});

test('verify: the key, the body and the timestamp all count', () => {
  const k = randomBytes(32);
  const t = 1_700_000_000_000;
  const s = sign(k, t, 'x');
  assert.ok(verify(k, String(t), s, 'x', t + 1000));
  assert.not.ok(verify(k, String(t), s, 'y', t));
  assert.not.ok(verify(randomBytes(32), String(t), s, 'x', t));
  assert.not.ok(verify(k, String(t), s, 'x', t + 31_000));
  assert.not.ok(verify(k, String(t), `${s}0`, 'x', t));
  assert.not.ok(verify(k, 'soon', s, 'x', t));
  assert.not.ok(verify(k, undefined, s, 'x', t));
  assert.not.ok(forwardingKey({}), 'no shared secret: no forwarding');
  assert.not.equal(forwardingKey({ keyringKey: k }), forwardingKey({ jwtSecret: k.toString('hex') }));
});

test.run();
