// How Telegram sends the login code, end to end: the real code type (app, sms, call, email,
// fragment …) with the next type, length and resend time; POST …/code/resend walks Telegram's
// order (auth.resendCode) until it has no other way (422) and refuses a resend asked too early (429);
// a resend survives a restart; a snapshot of the account machine's version 1 is still restored.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack(); });
test.after(async () => { await s.close(); });

const OWNER = 'codes-owner';
const login = (phone: string) => s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
const resend = (id: string) => s.connections.resendCode!(OWNER, id);

test('resend walks app → sms → call, then 422 TG_CODE_RESEND_UNAVAILABLE; the last code signs in', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, codeTypes: ['app', 'sms', 'call'], codeTimeoutS: 0 });
  const c = await login(phone);
  assert.is(c.status, 'awaiting-code');
  assert.equal(c.login, { method: 'phone', codeType: 'app', nextCodeType: 'sms', codeLength: 5 });
  const sms = await resend(c.id);
  assert.equal([sms.status, sms.login?.codeType, sms.login?.nextCodeType], ['awaiting-code', 'sms', 'call']);
  assert.is(s.emu.lastCode(phone)!.type, 'sms');
  const call = await resend(c.id);
  assert.equal([call.login?.codeType, call.login?.nextCodeType], ['call', undefined]);
  const none = await resend(c.id).catch((e) => e);
  assert.is(none.code, 'TG_CODE_RESEND_UNAVAILABLE');
  assert.is(none.status, 422);
  const still = await s.connections.get(OWNER, c.id);
  assert.equal([still.status, still.login?.codeType], ['awaiting-code', 'call']);
  assert.is((await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code)).status, 'active');
  const audit = await s.db.sql`select details from audit where target = ${c.id} and action = 'login.code.resend' order by id`;
  assert.equal(audit.map((r) => r.details.result), ['awaiting-code', 'awaiting-code', 'TG_CODE_RESEND_UNAVAILABLE']);
});

test('a resend before Telegram\'s timeout: 429 TG_API_429 with retryAfter; login.resendAfter said when', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, codeTypes: ['app', 'sms'], codeTimeoutS: 90 });
  const c = await login(phone);
  assert.ok(c.login?.resendAfter, 'resendAfter given');
  const ahead = Date.parse(String(c.login!.resendAfter)) - Date.now();
  assert.ok(ahead > 80_000 && ahead <= 90_000, `about 90 s ahead, got ${ahead} ms`);
  const early = await resend(c.id).catch((e) => e);
  assert.is(early.code, 'TG_API_429');
  assert.ok(early.retryAfter >= 80 && early.retryAfter <= 90, `retryAfter ${early.retryAfter}`);
  const still = await s.connections.get(OWNER, c.id);
  assert.equal([still.status, still.login?.codeType], ['awaiting-code', 'app']);
  assert.is((await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code)).status, 'active', 'the first code still works');
});

test('an e-mail code user and a Fragment +888 user: codeType email / fragment, and they log in', async () => {
  const emailUser = newPhone();
  await s.emu.createUser({ phone: emailUser, loginEmail: 'ann@example.org' });
  const e = await login(emailUser);
  assert.is(e.login?.codeType, 'email');
  assert.is((await s.connections.submitCode(OWNER, e.id, s.emu.lastCode(emailUser)!.code)).status, 'active');
  const fragment = `+888${String(Date.now()).slice(-8)}`;
  await s.emu.createUser({ phone: fragment });
  const f = await login(fragment);
  assert.is(f.login?.codeType, 'fragment');
  assert.is((await s.connections.submitCode(OWNER, f.id, s.emu.lastCode(fragment)!.code)).status, 'active');
});

test('resend on a connection that is not awaiting a code: 409 INVALID_STATE; another owner: 404', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, codeTypes: ['app', 'sms'], codeTimeoutS: 0 });
  const c = await login(phone);
  assert.is((await s.connections.resendCode!('mallory', c.id).catch((e) => e)).code, 'NOT_FOUND');
  await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
  assert.is((await resend(c.id).catch((e) => e)).code, 'INVALID_STATE');
});

test('a restart after a resend: the resent code (its new hash) still signs in', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, codeTypes: ['app', 'sms'], codeTimeoutS: 0 });
  const c = await login(phone);
  assert.is((await resend(c.id)).login?.codeType, 'sms');
  const code = s.emu.lastCode(phone)!.code;
  await s.restart();
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'awaiting-code', 'awaiting-code after restart');
  assert.is((await s.connections.get(OWNER, c.id)).login?.codeType, 'sms', 'the code type survives the restart');
  assert.is((await s.connections.submitCode(OWNER, c.id, code)).status, 'active');
});

test('a version-1 snapshot (before resends) in awaiting-code is restored and still signs in', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone });
  const c = await login(phone);
  const code = s.emu.lastCode(phone)!.code;
  await s.restart();
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'awaiting-code', 'awaiting-code');
  // Rewrite the stored snapshot as version 1 wrote it (no codeInfo), then restore it.
  await s.supervisor.stop();
  await s.db.sql`update connections set machine_version = 1, snapshot = jsonb_set(snapshot, '{context}', (snapshot->'context') - 'codeInfo') where id = ${c.id}`;
  const [row] = await s.db.sql`select machine_version, snapshot->'context' ? 'codeInfo' as has from connections where id = ${c.id}`;
  assert.equal([row!.machine_version, row!.has], [1, false]);
  await s.restart();
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'awaiting-code', 'awaiting-code from the v1 snapshot');
  assert.is((await s.connections.submitCode(OWNER, c.id, code)).status, 'active');
  const [after] = await s.db.sql`select machine_version from connections where id = ${c.id}`;
  assert.is(after!.machine_version, 2, 'saved again as version 2');
});

test('forgotten 2FA password: recovery code by e-mail signs in and sets the new password, which is stored nowhere', async () => {
  const phone = newPhone();
  const newPassword = 'brand-new-passphrase-42';
  await s.emu.createUser({ phone, password: 'forgotten', recoveryEmail: 'ann@example.org' });
  const c = await login(phone);
  assert.is((await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code)).status, 'awaiting-2fa');
  const { emailPattern } = await s.connections.requestPasswordRecovery!(OWNER, c.id);
  assert.match(emailPattern, /\*/);
  assert.not.match(emailPattern, /ann@example\.org/);
  const wrong = await s.connections.recoverPassword!(OWNER, c.id, '000000', newPassword).catch((e) => e);
  assert.is(wrong.code, 'TG_CODE_INVALID');
  assert.is((await s.connections.get(OWNER, c.id)).status, 'awaiting-2fa');
  const code = s.emu.recoveryCode(phone)!.code;
  const active = await s.connections.recoverPassword!(OWNER, c.id, code, newPassword);
  assert.is(active.status, 'active');
  await until(async () => (await s.db.sql`select status from connections where id = ${c.id}`)[0]?.status === 'active', 'row active');
  const rows = await s.db.sql`select snapshot::text as snap, error::text as err, login::text as login from connections where id = ${c.id}`;
  const audit = await s.db.sql`select details::text as d from audit where target = ${c.id}`;
  const stored = JSON.stringify([rows, audit, s.supervisor.actor(c.id)]);
  assert.not.ok(stored.includes(newPassword), 'the new password is in no row, audit entry or actor view');
  assert.not.ok(stored.includes(code), 'nor the recovery code');
  // The new password is Telegram's now: a fresh login needs it.
  const again = await login(phone);
  assert.is((await s.connections.submitCode(OWNER, again.id, s.emu.lastCode(phone)!.code)).status, 'awaiting-2fa');
  assert.is((await s.connections.submitPassword(OWNER, again.id, newPassword)).status, 'active');
});

test('recovery without a recovery e-mail: 422 TG_RECOVERY_UNAVAILABLE; outside awaiting-2fa: 409; another owner: 404', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, password: 'no-email' });
  const c = await login(phone);
  assert.is((await s.connections.requestPasswordRecovery!(OWNER, c.id).catch((e) => e)).code, 'INVALID_STATE');
  await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
  const na = await s.connections.requestPasswordRecovery!(OWNER, c.id).catch((e) => e);
  assert.is(na.code, 'TG_RECOVERY_UNAVAILABLE');
  assert.is(na.status, 422);
  assert.is((await s.connections.requestPasswordRecovery!('mallory', c.id).catch((e) => e)).code, 'NOT_FOUND');
  assert.is((await s.connections.recoverPassword!('mallory', c.id, '123456').catch((e) => e)).code, 'NOT_FOUND');
  assert.is((await s.connections.submitPassword(OWNER, c.id, 'no-email')).status, 'active');
});

test.run();
