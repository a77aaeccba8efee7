// Login steps against a storage outage that starts AFTER Telegram acted: auth.sendCode sent a code,
// or auth.signIn / auth.checkPassword authorised the key, and then the secret write fails. The
// Telegram side is the real emulator over real sockets and the secrets the real encrypted Postgres
// vault; only the vault's save/remove are wrapped to fail for a given secret the first N times,
// the way a Postgres or Vault outage would (postgres.js's CONNECTION_CLOSED).
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import type { SecretVault } from '../../src/platforms/adapter.ts';
import type { SecretName } from '../../src/store/connections.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

const OWNER = 'olga';
// The driver retries a failed login state write for this long (30 s in production).
const SAVE_BUDGET_MS = 2_000;

// ---- the outage: the next N saves/removes of one secret fail -----------------------------------
const failing = { save: new Map<SecretName, number>(), remove: new Map<SecretName, number>() };
const calls = { save: new Map<SecretName, number>(), remove: new Map<SecretName, number>() };
const outage = () => Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' });
const hit = (op: 'save' | 'remove', name: SecretName) => {
  calls[op].set(name, (calls[op].get(name) ?? 0) + 1);
  const left = failing[op].get(name) ?? 0;
  if (left <= 0) return false;
  failing[op].set(name, left - 1);
  return true;
};
const withOutage = (vault: SecretVault): SecretVault => ({
  load: () => vault.load(),
  async save(name, plaintext) {
    if (hit('save', name)) throw outage();
    return vault.save(name, plaintext);
  },
  async remove(name) {
    if (hit('remove', name)) throw outage();
    return vault.remove(name);
  },
});
const healthy = () => {
  for (const m of [...Object.values(failing), ...Object.values(calls)]) m.clear();
};

// ---- codes Telegram sent: every auth.sendCode the emulator served, with the hash it returned -----
const sent: { phone: string; hash: string }[] = [];
const codesTo = (phone: string) => sent.filter((c) => c.phone === phone.replace(/\D/g, '')).length;

// The supervisor's logger, which its drivers log through: every line it writes lands here.
const lines: string[] = [];
const logger = winston.createLogger({ transports: [new winston.transports.Stream({ stream: new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }) })] });

let emu: Emulator;
let s: Stack;
test.before(async () => {
  emu = await startEmulator();
  const login = emu.world.login;
  const sendCode = login.sendCode.bind(login);
  login.sendCode = (rec, phone, dc) => {
    const code = sendCode(rec, phone, dc);
    sent.push({ phone: phone.replace(/\D/g, ''), hash: code.hash });
    return code;
  };
  s = await startStack({
    emu,
    supervisor: { logger },
    account: { loginStateSaveMs: SAVE_BUDGET_MS },
    adapter: (telegram) => {
      const user = telegram.kinds.find((k) => k.kind === 'user')!;
      const real = user.driver;
      user.driver = (ctx) => real({ ...ctx, secrets: withOutage(ctx.secrets) });
      return telegram;
    },
  });
});
test.after(async () => {
  await s.close();
  await emu.stop();
});
test.before.each(() => {
  healthy();
  lines.length = 0;
});

const loginStateRows = async (id: string) =>
  (await s.db.sql`select count(*)::int as n from connection_secrets where connection_id = ${id} and name = 'login_state'`)[0]!.n as number;

test('login_state write fails 3 times after the code was sent: one code, awaiting-code, written on retry, sign-in works', async () => {
  const phone = newPhone();
  await emu.createUser({ phone, firstName: 'Una' });
  failing.save.set('login_state', 3);
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'awaiting-code', 'awaiting-code');
  assert.is(codesTo(phone), 1, 'one code: the storage retry does not ask Telegram again');
  assert.is(calls.save.get('login_state'), 4, 'three failed writes, the fourth stored it');
  assert.is(await loginStateRows(c.id), 1);
  const active = await s.connections.submitCode(OWNER, c.id, emu.lastCode(phone)!.code);
  assert.is(active.status, 'active');
  assert.is(codesTo(phone), 1);
  await until(async () => (await loginStateRows(c.id)) === 0, 'used login state deleted');
});

test('login_state cannot be written at all: still one code, awaiting-code, sign-in from memory, a warning without secrets', async () => {
  const phone = newPhone();
  await emu.createUser({ phone, firstName: 'Vera' });
  failing.save.set('login_state', 1_000);
  const started = Date.now();
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is(c.status, 'awaiting-code');
  // 0.2 + 0.4 + 0.8 s between 4 tries; the next wait (1.6 s) would pass the 2 s budget.
  assert.ok(Date.now() - started >= 1_400, 'the write was retried within its budget');
  assert.is(codesTo(phone), 1, 'one code for the whole outage');
  const tries = calls.save.get('login_state')!;
  assert.is(tries, 4, 'bounded retries');
  assert.is(await loginStateRows(c.id), 0);
  // Nothing more is written or sent while the outage goes on.
  await new Promise((r) => setTimeout(r, 500));
  assert.is(calls.save.get('login_state'), tries);
  assert.is(codesTo(phone), 1);
  const warning = lines.find((l) => l.includes('login state not saved'));
  assert.ok(warning, 'a warning is logged');
  assert.match(warning!, c.id);
  assert.match(warning!, 'CONNECTION_CLOSED');
  const { hash } = sent.find((x) => x.phone === phone.replace(/\D/g, ''))!;
  for (const secret of [phone, phone.replace(/\D/g, ''), hash]) assert.not.ok(lines.join('\n').includes(secret), 'no phone or code hash in logs');
  const active = await s.connections.submitCode(OWNER, c.id, emu.lastCode(phone)!.code);
  assert.is(active.status, 'active');
  assert.is(codesTo(phone), 1);
});

test('login_state delete fails after auth.signIn succeeded: active (not TG_CODE_EXPIRED); the next connect deletes it', async () => {
  const phone = newPhone();
  await emu.createUser({ phone, firstName: 'Wanda' });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is(c.status, 'awaiting-code');
  failing.remove.set('login_state', 1);
  const active = await s.connections.submitCode(OWNER, c.id, emu.lastCode(phone)!.code);
  assert.is(active.status, 'active');
  assert.is(active.error, undefined);
  assert.is(calls.remove.get('login_state'), 1);
  assert.ok(lines.some((l) => l.includes('used login state not deleted')), 'the failed delete is logged');
  assert.is(await loginStateRows(c.id), 1, 'the used hash is still stored after the failed delete');
  await s.restart();
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'active', 'active again after a restart');
  await until(async () => (await loginStateRows(c.id)) === 0, 'the leftover login state deleted by the next connect');
  assert.is(codesTo(phone), 1);
});

test('login_state delete fails after auth.checkPassword succeeded: active (not TG_PASSWORD_INVALID)', async () => {
  const phone = newPhone();
  const password = 'tr0ub4dor&3';
  await emu.createUser({ phone, password });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  const two = await s.connections.submitCode(OWNER, c.id, emu.lastCode(phone)!.code);
  assert.is(two.status, 'awaiting-2fa');
  failing.remove.set('login_state', 1);
  const active = await s.connections.submitPassword(OWNER, c.id, password);
  assert.is(active.status, 'active');
  assert.is(active.error, undefined);
  assert.is(calls.remove.get('login_state'), 1);
  assert.not.ok(lines.join('\n').includes(password));
});

// Not storage, the same shape: auth.signIn authorised the key but its answer was lost (the link
// dropped before the reply); the retried signIn finds the code used up.
test('auth.signIn succeeded but its answer was lost: the retry finds the key authorised → active, not TG_CODE_EXPIRED', async () => {
  const phone = newPhone();
  await emu.createUser({ phone, firstName: 'Xenia' });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is(c.status, 'awaiting-code');
  const login = emu.world.login;
  const signIn = login.signIn;
  login.signIn = (...args) => {
    const user = signIn.apply(login, args);
    login.signIn = signIn;
    emu.world.dropConnections(); // before the reply is written: the client never sees it
    return user;
  };
  try {
    await s.connections.submitCode(OWNER, c.id, emu.lastCode(phone)!.code).catch(() => undefined);
    const after = await until(async () => {
      const now = await s.connections.get(OWNER, c.id);
      return now.status === 'active' || now.error?.code === 'TG_CODE_EXPIRED' ? now : undefined;
    }, 'signIn retried', 15_000);
    assert.is(after.error?.code, undefined);
    assert.is(after.status, 'active');
  } finally {
    login.signIn = signIn;
  }
  assert.is(codesTo(phone), 1);
});

test.run();
