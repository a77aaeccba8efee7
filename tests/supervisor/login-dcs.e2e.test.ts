// Logins of accounts homed on Telegram's other DCs, end to end: the daemon points at DC 1
// (TELEGRAM_DC = the emulator's DC 1, 3 DCs), the emulator answers PHONE_MIGRATE_X /
// loginTokenMigrateTo, and the daemon follows, saves the switched session and restores it on the
// right DC after a restart (no new DH, no AUTH_KEY_DUPLICATED).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import type { OutboundMessage } from '../../src/delivery/types.ts';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack(); });
test.after(async () => { await s.close(); });

const OWNER = 'dc-owner';
const byDc = () => s.emu.stats().byDc;
const activeOn = async (id: string) => until(async () => (await s.connections.get(OWNER, id)).status === 'active', `connection ${id} active`);

test('the emulator serves 3 DCs and the daemon is pointed at DC 1', () => {
  assert.equal(Object.keys(s.emu.dcs), ['1', '2', '3']);
  assert.is(s.emu.dcs['1'], s.emu.mtproto);
});

for (const dc of [1, 2, 3]) {
  test(`phone login of a DC-${dc} user: awaiting-code → active, the session lives on DC ${dc}`, async () => {
    const phone = newPhone();
    const { userId } = await s.emu.createUser({ phone, firstName: `Dora${dc}`, dc });
    const before = s.emu.stats();
    const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
    assert.is(c.status, 'awaiting-code', 'the caller never sees the migration');
    const active = await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
    assert.is(active.status, 'active');
    assert.is(active.platformUserId, String(userId));
    const after = s.emu.stats();
    assert.is(after.migrationsServed - before.migrationsServed, dc === 1 ? 0 : 1, 'one PHONE_MIGRATE for another DC');
    assert.is(after.byDc[String(dc)]!.activeAuthKeys, before.byDc[String(dc)]!.activeAuthKeys + 1, `authorised on DC ${dc}`);
    for (const other of [1, 2, 3].filter((d) => d !== dc)) {
      assert.is(after.byDc[String(other)]!.activeAuthKeys, before.byDc[String(other)]!.activeAuthKeys, `nothing authorised on DC ${other}`);
    }
  });
}

test('phone login with 2FA of a DC-2 user: code → awaiting-2fa → password → active on DC 2', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, dc: 2, password: 'hunter2-dc' });
  const before = byDc()['2']!.activeAuthKeys;
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  const two = await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
  assert.is(two.status, 'awaiting-2fa');
  assert.is((await s.connections.submitPassword(OWNER, c.id, 'hunter2-dc')).status, 'active');
  assert.is(byDc()['2']!.activeAuthKeys, before + 1);
});

test('a restart in awaiting-code of a DC-3 user keeps the DC-3 key: the code still signs in', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, dc: 3 });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is(c.status, 'awaiting-code');
  const code = s.emu.lastCode(phone)!.code;
  await s.restart();
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'awaiting-code', 'awaiting-code after restart');
  assert.is((await s.connections.submitCode(OWNER, c.id, code)).status, 'active');
});

for (const dc of [2, 3]) {
  test(`QR login accepted by a DC-${dc} user: loginTokenMigrateTo → importLoginToken on DC ${dc} → active`, async () => {
    const phone = newPhone();
    const { userId } = await s.emu.createUser({ phone, firstName: `Quill${dc}`, dc });
    const before = s.emu.stats();
    const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'qr' });
    assert.is(c.status, 'awaiting-qr');
    const qr = await s.connections.qr(OWNER, c.id);
    s.emu.acceptQr(qr.url.split('token=')[1]!, phone);
    await activeOn(c.id);
    const got = await s.connections.get(OWNER, c.id);
    assert.is(got.platformUserId, String(userId));
    const after = s.emu.stats();
    assert.ok(after.migrationsServed > before.migrationsServed, 'a loginTokenMigrateTo was served');
    assert.is(after.byDc[String(dc)]!.activeAuthKeys, before.byDc[String(dc)]!.activeAuthKeys + 1, `authorised on DC ${dc}`);
  });
}

test('QR login with 2FA accepted by a DC-2 user: import on DC 2 → awaiting-2fa → password → active', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, dc: 2, password: 'qr-dc-pw' });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'qr' });
  const qr = await s.connections.qr(OWNER, c.id);
  s.emu.acceptQr(qr.url.split('token=')[1]!, phone);
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'awaiting-2fa', 'awaiting-2fa');
  assert.is((await s.connections.submitPassword(OWNER, c.id, 'qr-dc-pw')).status, 'active');
});

test('restart: accounts on DC 2 and 3 come back active on their DC with no new DH and no AUTH_KEY_DUPLICATED', async () => {
  const ids: string[] = [];
  for (const dc of [2, 3]) {
    const phone = newPhone();
    await s.emu.createUser({ phone, dc });
    const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
    await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
    ids.push(c.id);
  }
  for (const id of ids) await activeOn(id);
  const before = s.emu.stats();
  await s.restart();
  for (const id of ids) await activeOn(id);
  // Every connection in the store is restored, so a DH anywhere would mean a session restored on the wrong DC.
  const after = s.emu.stats();
  assert.is(after.handshakes, before.handshakes, 'no new DH on any DC');
  assert.is(after.duplicateAuthKeyUse, before.duplicateAuthKeyUse, 'no AUTH_KEY_DUPLICATED');
  assert.is(after.migrationsServed, before.migrationsServed, 'no migration after the first login');
  for (const id of ids) assert.is((await s.connections.get(OWNER, id)).status, 'active');
});

test('numbers the API accepts but Telegram refuses end in error TG_PHONE_INVALID, no retry loop (test DC 4 is not served, an unknown number)', async () => {
  for (const phone of ['+9996641234', newPhone()]) {
    const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
    const ended = await until(async () => {
      const got = await s.connections.get(OWNER, c.id);
      return got.status === 'error' ? got : undefined;
    }, `${phone} in error`);
    assert.is(ended.error?.code, 'TG_PHONE_INVALID', phone);
    assert.is(ended.error?.retryAt, undefined, 'Telegram said no: nothing to retry');
  }
});

test('a Telegram test number +99966 2 YYYY logs in on DC 2 with its fixed code 22222', async () => {
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone: '+9996625678' });
  assert.is(c.status, 'awaiting-code');
  assert.is((await s.connections.submitCode(OWNER, c.id, '22222')).status, 'active');
});

test('a NETWORK_MIGRATE fault mid-send on a DC-2 account: that attempt fails retryably, the retry sends once; nothing lost or doubled', async () => {
  const phone = newPhone();
  const { userId } = await s.emu.createUser({ phone, dc: 2 });
  const channel = `dcchan${process.pid}${Date.now() % 100_000}`;
  const { chatId } = s.emu.createChat({ type: 'channel', title: channel, username: channel, members: [{ id: userId, role: 'creator' }] });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
  await activeOn(c.id);
  const msg: OutboundMessage = { id: randomUUID(), owner: OWNER, connectionId: c.id, chat: `@${channel}`, text: 'across DCs', silent: false, priority: 'normal', attempts: 1, createdAt: new Date() };
  s.emu.fault({ type: 'migrate', target: phone, dc: 3, count: 1, method: 'messages.sendMessage' });
  const first = await s.supervisor.send(msg).then(() => undefined, (e: unknown) => e as { code?: string; retryable?: boolean });
  assert.is(first?.code, 'TG_UNAVAILABLE');
  assert.ok(first?.retryable, 'the delivery retries it');
  assert.is(s.emu.delivered({ chatId }).length, 0, 'Telegram did not take the message');
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'active', 'active again');
  const sent = await until(async () => s.supervisor.send({ ...msg, attempts: 2 }).catch(() => undefined), 'the retry sent');
  assert.ok(sent.platformMessageId);
  await s.supervisor.send({ ...msg, attempts: 3 }).catch(() => undefined);
  assert.is(s.emu.delivered({ chatId }).filter((m) => m.text === 'across DCs').length, 1, 'exactly once');
});

test.run();
