// Restarts, drops, revocations, breakers and flood waits, end to end against the emulator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => {
  s = await startStack({
    account: { heartbeatMs: 300 },
    supervisor: { restart: { max: 2, windowS: 60 }, breakerHalfOpenS: 60, backoff: { baseMs: 100, capMs: 800 } },
  });
});
test.after(async () => { await s.close(); });

const OWNER = 'bob';

async function activeAccount(): Promise<{ id: string; phone: string; userId: number }> {
  const phone = newPhone();
  const { userId } = await s.emu.createUser({ phone });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  const done = await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
  assert.is(done.status, 'active');
  return { id: c.id, phone, userId };
}

const statusOf = async (id: string) => (await s.connections.get(OWNER, id)).status;

test('supervisor restart in awaiting-code: the same code still signs in', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is(c.status, 'awaiting-code');
  const code = s.emu.lastCode(phone)!.code;
  await s.restart();
  assert.is(await statusOf(c.id), 'awaiting-code');
  assert.is(s.emu.lastCode(phone)!.code, code, 'no second code was sent');
  assert.is((await s.connections.submitCode(OWNER, c.id, code)).status, 'active');
});

test('supervisor restart in active: back to active, no new login, no AUTH_KEY_DUPLICATED', async () => {
  const a = await activeAccount();
  const code = s.emu.lastCode(a.phone)!.code;
  const dupBefore = s.emu.stats().duplicateAuthKeyUse;
  await s.restart();
  await until(async () => (await statusOf(a.id)) === 'active', 'active after restart');
  assert.is(s.emu.lastCode(a.phone)!.code, code, 'no new code requested');
  assert.is(s.emu.stats().duplicateAuthKeyUse, dupBefore);
});

test('drop-connections: every account comes back active after a jittered backoff', async () => {
  const accounts = await Promise.all([activeAccount(), activeAccount(), activeAccount()]);
  const restartsBefore = accounts.map((a) => s.supervisor.actor(a.id)!.restarts);
  const dupBefore = s.emu.stats().duplicateAuthKeyUse;
  s.emu.fault({ type: 'drop-connections' });
  await until(() => accounts.every((a) => s.supervisor.actor(a.id)!.restarts > restartsBefore[accounts.indexOf(a)]!), 'drops noticed');
  for (const a of accounts) await until(async () => (await statusOf(a.id)) === 'active', `account ${a.id} active again`);
  for (const a of accounts) {
    const t = s.supervisor.actor(a.id)!.transitions.map((x) => x.to);
    assert.ok(t.some((x) => x.includes('connecting')), 'went through connecting');
  }
  assert.is(s.emu.stats().duplicateAuthKeyUse, dupBefore);
});

test('revoke-session: error TG_SESSION_EXPIRED and no retry storm', async () => {
  const a = await activeAccount();
  const bystander = await activeAccount();
  s.emu.fault({ type: 'revoke-session', target: a.phone });
  await until(async () => (await statusOf(a.id)) === 'error', 'revoked account in error', 8000);
  const c = await s.connections.get(OWNER, a.id);
  assert.is(c.error?.code, 'TG_SESSION_EXPIRED');
  const restarts = s.supervisor.actor(a.id)!.restarts;
  await new Promise((r) => setTimeout(r, 1200)); // 4 heartbeats: long enough for a storm to show
  assert.is(s.supervisor.actor(a.id)!.restarts, restarts, 'no reconnect attempts after revocation');
  assert.is(await statusOf(a.id), 'error');
  assert.is(await statusOf(bystander.id), 'active');
});

test('a connection that keeps failing opens its breaker; the others stay active', async () => {
  const bad = await activeAccount();
  const good = await activeAccount();
  s.emu.fault({ type: 'refuse-connections', target: bad.phone, seconds: 60 });
  s.emu.fault({ type: 'drop-connections', target: bad.phone });
  await until(async () => (await s.connections.get(OWNER, bad.id)).error?.code === 'CIRCUIT_OPEN', 'breaker open', 15_000);
  const c = await s.connections.get(OWNER, bad.id);
  assert.is(c.status, 'error');
  assert.ok(c.error?.retryAt && Date.parse(c.error.retryAt) > Date.now());
  assert.is(s.supervisor.actor(bad.id)!.breaker.state, 'open');
  assert.is(await statusOf(good.id), 'active');
  const sum = s.supervisor.actors();
  assert.ok(sum.totals.error! >= 1 && sum.totals.active! >= 1);
  assert.equal(s.supervisor.totals(), sum.totals, 'the O(1) counters agree with a full walk');
  // Reconnect resets the breaker: once Telegram accepts connections again the account is back.
  s.emu.fault({ type: 'clear' });
  assert.is((await s.connections.reconnect(OWNER, bad.id)).id, bad.id);
  await until(async () => (await statusOf(bad.id)) === 'active', 'active after reconnect', 8000);
});

test('sends: delivered once per message id (random_id), flood wait surfaces as TG_API_429 without failing the connection', async () => {
  const a = await activeAccount();
  const peer = newPhone();
  const username = `peer${Date.now() % 1e6}`;
  await s.emu.createUser({ phone: peer, username });
  const msg = { id: crypto.randomUUID(), owner: OWNER, connectionId: a.id, chat: `@${username}`, text: 'hello', silent: false, priority: 'normal' as const, attempts: 1, createdAt: new Date() };
  const first = await s.supervisor.send(msg);
  assert.ok(first.platformMessageId);
  await s.supervisor.send({ ...msg, attempts: 2 }).catch(() => undefined);
  assert.is(s.emu.delivered({ fromId: a.userId }).filter((m) => m.text === 'hello').length, 1, 'a resend with the same random_id is dropped');
  s.emu.fault({ type: 'flood-wait', target: a.phone, seconds: 7, count: 1 });
  const err = await s.supervisor.send({ ...msg, id: crypto.randomUUID(), text: 'second' }).catch((e) => e);
  assert.is(err.code, 'TG_API_429');
  assert.is(err.retryAfter, 7);
  assert.is(await statusOf(a.id), 'active');
  await new Promise((r) => setTimeout(r, 1100)); // the emulator paces one chat at 1 msg/s, like Telegram
  assert.ok((await s.supervisor.send({ ...msg, id: crypto.randomUUID(), text: 'third' })).platformMessageId);
});

test('remove: logs out at Telegram, stops the actor, deletes rows and secrets', async () => {
  const a = await activeAccount();
  await s.connections.remove(OWNER, a.id);
  assert.is((await s.connections.get(OWNER, a.id).catch((e) => e)).code, 'NOT_FOUND');
  assert.is((await s.db.sql`select count(*)::int as n from connection_secrets where connection_id = ${a.id}`)[0]!.n, 0);
  const audit = await s.db.sql`select action from audit where target = ${a.id} order by id`;
  assert.ok(audit.some((r) => r.action === 'connection.deleted'));
  assert.is(s.supervisor.actor(a.id), undefined);
});

test.run();
