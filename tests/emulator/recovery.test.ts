import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, password, type TelegramClient } from 'telegram';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock, dcConnected, destroyAll, phoneLogin, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// A forgotten 2FA password, through GramJS over TCP: auth.requestPasswordRecovery e-mails a code to
// the recovery address, auth.recoverPassword with it signs in and removes the password, or replaces
// it with the one the client computed from account.getPassword's new_algo.

const clock = new ManualClock();
let emu: Emulator;
let n = 0;
const phone = () => `+4477003${String(10_000 + ++n).slice(1)}`;

test.before(async () => {
  emu = await startEmulator({ clock, codeTtlMs: 600_000 });
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

/** A client stopped at SESSION_PASSWORD_NEEDED for a new user with this 2FA setup. */
async function atPassword(user: { password?: string; recoveryEmail?: string }): Promise<{ p: string; userId: number; client: TelegramClient }> {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, ...user });
  const { client } = await dcConnected(emu, { requestRetries: 1 });
  assert.is(await rpcErrorOf(phoneLogin(emu, client, p)), 'SESSION_PASSWORD_NEEDED');
  return { p, userId, client };
}

const request = async (client: TelegramClient) =>
  (await withTimeout(client.invoke(new Api.auth.RequestPasswordRecovery()))) as Api.auth.PasswordRecovery;
const recover = async (client: TelegramClient, code: string, newSettings?: Api.account.PasswordInputSettings) =>
  (await withTimeout(client.invoke(new Api.auth.RecoverPassword({ code, newSettings })))) as Api.auth.Authorization;

async function loginFails(p: string): Promise<string> {
  const { client } = await dcConnected(emu, { requestRetries: 1 });
  return rpcErrorOf(phoneLogin(emu, client, p)).catch(() => 'logged in');
}

test('recovery by e-mail code signs in and removes the password (and the recovery e-mail with it)', async () => {
  const { p, userId, client } = await atPassword({ password: 'forgotten', recoveryEmail: 'carol@example.net' });
  const srp = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  assert.ok(srp.hasRecovery, 'account.getPassword says a recovery e-mail exists');
  assert.is((await request(client)).emailPattern, 'c****@e******.net');
  const { code } = emu.recoveryCode(p)!;
  assert.match(code, /^\d{6}$/);
  assert.is(await withTimeout(client.invoke(new Api.auth.CheckRecoveryPassword({ code }))), true);
  const wrong = code === '000000' ? '111111' : '000000';
  assert.is(await rpcErrorOf(recover(client, wrong)), 'CODE_INVALID');
  assert.is(Number((await recover(client, code)).user.id), userId);
  assert.is(Number((await withTimeout(client.getMe())).id), userId);
  const after = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  assert.is(after.hasPassword, false);
  assert.is(emu.recoveryCode(p), undefined, 'the code is used up');
  const { client: next } = await dcConnected(emu, { requestRetries: 1 });
  assert.is(Number((await phoneLogin(emu, next, p)).user.id), userId, 'the next login needs no password');
});

test('recovery with new_settings replaces the password: the old one fails, the new one logs in', async () => {
  const { p, userId, client } = await atPassword({ password: 'old secret', recoveryEmail: 'dan@example.com' });
  await request(client);
  const pwd = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  // What GramJS's updateTwoFaSettings does with new_algo: the client adds 32 random bytes to salt1.
  const algo = pwd.newAlgo as Api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow;
  algo.salt1 = Buffer.concat([algo.salt1, Buffer.alloc(32, 7)]);
  const newSettings = new Api.account.PasswordInputSettings({ newAlgo: algo, newPasswordHash: await password.computeDigest(algo, 'new secret'), hint: '' });
  assert.is(Number((await recover(client, emu.recoveryCode(p)!.code, newSettings)).user.id), userId);
  assert.is(await loginFails(p), 'SESSION_PASSWORD_NEEDED');
  const { client: next } = await dcConnected(emu, { requestRetries: 1 });
  await rpcErrorOf(phoneLogin(emu, next, p));
  const old = (await withTimeout(next.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  assert.ok(old.hasRecovery, 'the recovery e-mail stays with a new password');
  assert.is(await rpcErrorOf(next.invoke(new Api.auth.CheckPassword({ password: await password.computeCheck(old, 'old secret') }))), 'PASSWORD_HASH_INVALID');
  const fresh = (await withTimeout(next.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  const auth = (await withTimeout(next.invoke(new Api.auth.CheckPassword({ password: await password.computeCheck(fresh, 'new secret') })))) as Api.auth.Authorization;
  assert.is(Number(auth.user.id), userId);
});

test('recovery errors: no recovery e-mail, no code asked, empty, expired, garbage new settings, no password', async () => {
  const noEmail = await atPassword({ password: 'pw' });
  assert.is(await rpcErrorOf(request(noEmail.client)), 'PASSWORD_RECOVERY_NA');
  const { p, client } = await atPassword({ password: 'pw', recoveryEmail: 'erin@example.com' });
  assert.is(await rpcErrorOf(recover(client, '123456')), 'CODE_INVALID', 'no code was e-mailed yet');
  assert.is(await rpcErrorOf(recover(client, '')), 'CODE_EMPTY');
  await request(client);
  const { code } = emu.recoveryCode(p)!;
  const garbage = new Api.account.PasswordInputSettings({ newAlgo: new Api.PasswordKdfAlgoUnknown(), newPasswordHash: Buffer.alloc(256, 1), hint: '' });
  assert.is(await rpcErrorOf(recover(client, code, garbage)), 'NEW_SETTINGS_INVALID');
  clock.advance(600_001);
  assert.is(await rpcErrorOf(recover(client, code)), 'PASSWORD_RECOVERY_EXPIRED');
  assert.is(await loginFails(p), 'SESSION_PASSWORD_NEEDED', 'the password is still there');
  const plain = phone();
  await emu.createUser({ phone: plain, recoveryEmail: 'fay@example.com' });
  const { client: loggedIn } = await dcConnected(emu, { session: await emu.createSession(plain), requestRetries: 1 });
  assert.is(await rpcErrorOf(request(loggedIn)), 'PASSWORD_EMPTY');
  const { client: nobody } = await dcConnected(emu, { requestRetries: 1 });
  assert.is(await rpcErrorOf(request(nobody)), 'AUTH_KEY_UNREGISTERED');
});

test.run();
