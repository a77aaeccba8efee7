import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, password } from 'telegram';
import { startEmulator, type Emulator } from './index.ts';
import { API, ManualClock, connected, destroyAll, phoneLogin, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// Logins through the real GramJS client over TCP: phone code, 2FA (SRP), QR, session restore.

const clock = new ManualClock();
let emu: Emulator;
let n = 0;
const phone = () => `+4477009${String(10_000 + ++n).slice(1)}`;

test.before(async () => {
  emu = await startEmulator({ clock, codeTtlMs: 60_000 });
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

test('phone login: code from the control API signs the user in', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, firstName: 'Alice', username: `alice${n}` });
  const { client } = await connected(emu);
  const auth = await phoneLogin(emu, client, p);
  assert.is(Number((auth.user as Api.User).id), userId);
  const me = await withTimeout(client.getMe());
  assert.is(me.firstName, 'Alice');
  assert.is(me.phone, p.slice(1));
  assert.is(emu.stats().activeAuthKeys >= 1, true);
});

test('wrong code → PHONE_CODE_INVALID, and the right one still works after', async () => {
  const p = phone();
  await emu.createUser({ phone: p });
  const { client } = await connected(emu);
  const { phoneCodeHash } = await withTimeout(client.sendCode(API, p));
  const right = emu.lastCode(p)!.code;
  const wrong = right === '11111' ? '22222' : '11111';
  assert.is(await rpcErrorOf(client.invoke(new Api.auth.SignIn({ phoneNumber: p, phoneCodeHash, phoneCode: wrong }))), 'PHONE_CODE_INVALID');
  const ok = await withTimeout(client.invoke(new Api.auth.SignIn({ phoneNumber: p, phoneCodeHash, phoneCode: right })));
  assert.instance(ok, Api.auth.Authorization);
});

test('expired code → PHONE_CODE_EXPIRED', async () => {
  const p = phone();
  await emu.createUser({ phone: p });
  const { client } = await connected(emu);
  const { phoneCodeHash } = await withTimeout(client.sendCode(API, p));
  clock.advance(60_001);
  const err = await rpcErrorOf(client.invoke(new Api.auth.SignIn({ phoneNumber: p, phoneCodeHash, phoneCode: emu.lastCode(p)!.code })));
  assert.is(err, 'PHONE_CODE_EXPIRED');
});

test('unknown phone → PHONE_NUMBER_INVALID', async () => {
  const { client } = await connected(emu);
  assert.is(await rpcErrorOf(client.sendCode(API, '+447700999999')), 'PHONE_NUMBER_INVALID');
});

test('2FA: SESSION_PASSWORD_NEEDED, then the SRP proof of the right password logs in', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, password: 'correct horse' });
  const { client } = await connected(emu);
  assert.is(await rpcErrorOf(phoneLogin(emu, client, p)), 'SESSION_PASSWORD_NEEDED');
  const srp = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  assert.ok(srp.hasPassword);
  const check = await password.computeCheck(srp, 'correct horse');
  const auth = (await withTimeout(client.invoke(new Api.auth.CheckPassword({ password: check })))) as Api.auth.Authorization;
  assert.is(Number(auth.user.id), userId);
  assert.is(Number((await withTimeout(client.getMe())).id), userId);
});

test('2FA: a wrong password → PASSWORD_HASH_INVALID and the key stays logged out', async () => {
  const p = phone();
  await emu.createUser({ phone: p, password: 'correct horse' });
  const { client } = await connected(emu);
  assert.is(await rpcErrorOf(phoneLogin(emu, client, p)), 'SESSION_PASSWORD_NEEDED');
  const srp = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  const check = await password.computeCheck(srp, 'battery staple');
  assert.is(await rpcErrorOf(client.invoke(new Api.auth.CheckPassword({ password: check }))), 'PASSWORD_HASH_INVALID');
  assert.is(await rpcErrorOf(client.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] }))), 'AUTH_KEY_UNREGISTERED');
});

async function qrFlow(p: string): Promise<{ client: Awaited<ReturnType<typeof connected>>['client']; second: unknown }> {
  const { client } = await connected(emu);
  const scanned = new Promise<void>((resolve) => {
    client.addEventHandler((u: unknown) => {
      if (u instanceof Api.UpdateLoginToken) resolve();
    });
  });
  const first = (await withTimeout(client.invoke(new Api.auth.ExportLoginToken({ ...API, exceptIds: [] })))) as Api.auth.LoginToken;
  assert.instance(first, Api.auth.LoginToken);
  assert.ok(first.expires > Math.floor(clock.now() / 1000));
  emu.acceptQr(Buffer.from(first.token).toString('base64url'), p);
  await withTimeout(scanned, 5000, 'updateLoginToken');
  const second = await withTimeout(client.invoke(new Api.auth.ExportLoginToken({ ...API, exceptIds: [] }))).catch((e: unknown) => e);
  return { client, second };
}

test('QR login: updateLoginToken is pushed when accepted, then exportLoginToken succeeds', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p });
  const { client, second } = await qrFlow(p);
  assert.instance(second, Api.auth.LoginTokenSuccess);
  assert.is(Number(((second as Api.auth.LoginTokenSuccess).authorization as Api.auth.Authorization).user.id), userId);
  assert.is(Number((await withTimeout(client.getMe())).id), userId);
});

test('QR login with 2FA: the second export answers SESSION_PASSWORD_NEEDED, the password finishes it', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, password: 'pw-qr' });
  const { client, second } = await qrFlow(p);
  assert.is((second as { errorMessage?: string }).errorMessage, 'SESSION_PASSWORD_NEEDED');
  const srp = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  const auth = (await withTimeout(client.invoke(new Api.auth.CheckPassword({ password: await password.computeCheck(srp, 'pw-qr') })))) as Api.auth.Authorization;
  assert.is(Number(auth.user.id), userId);
});

test('QR accept of an unknown token is refused', async () => {
  const p = phone();
  await emu.createUser({ phone: p });
  assert.throws(() => emu.acceptQr(Buffer.from('nope').toString('base64url'), p), /AUTH_TOKEN_INVALID/);
});

test('a saved StringSession reconnects logged in without a new DH exchange', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p });
  const first = await connected(emu);
  await phoneLogin(emu, first.client, p);
  const saved = first.session.save();
  assert.ok(saved.length > 100);
  await withTimeout(first.client.destroy());
  const handshakes = emu.stats().handshakes;
  const again = await connected(emu, saved);
  assert.is(Number((await withTimeout(again.client.getMe())).id), userId);
  assert.is(emu.stats().handshakes, handshakes, 'no new auth key');
});

test('auth.logOut: later calls answer AUTH_KEY_UNREGISTERED', async () => {
  const p = phone();
  await emu.createUser({ phone: p });
  const { client } = await connected(emu);
  await phoneLogin(emu, client, p);
  assert.instance(await withTimeout(client.invoke(new Api.auth.LogOut())), Api.auth.LoggedOut);
  assert.is(await rpcErrorOf(client.invoke(new Api.updates.GetState())), 'AUTH_KEY_UNREGISTERED');
});

test.run();
