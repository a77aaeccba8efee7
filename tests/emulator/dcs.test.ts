import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, helpers, password, type TelegramClient } from 'telegram';
import { NewMessage, type NewMessageEvent } from 'telegram/events/index.js';
import { startEmulator, type Emulator } from './index.ts';
import { API, ManualClock, dcConnected, destroyAll, rpcErrorOf, withTimeout } from './support/gramjs.ts';
import { RawClient } from './support/raw-client.ts';

// Several data centers, driven by GramJS itself over real sockets: each DC has its own port and
// auth keys, an account lives on one, and GramJS's own handling follows PHONE_MIGRATE,
// loginTokenMigrateTo (with importLoginToken) and export/import of an authorization between DCs.

const clock = new ManualClock();
let emu: Emulator;
let n = 0;
const phone = () => `+4477005${String(10_000 + ++n).slice(1)}`;

test.before(async () => {
  emu = await startEmulator({ clock, codeTtlMs: 60_000 });
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

const stats = () => emu.stats();
const dcOf = (client: TelegramClient) => client.session.dcId;

test('three DCs by default, each on its own port; help.getConfig lists them all and says which one answered', async () => {
  assert.equal(Object.keys(emu.dcs), ['1', '2', '3']);
  assert.is(emu.dcs['1'], emu.mtproto);
  assert.is(new Set(Object.values(emu.dcs)).size, 3);
  const { client } = await dcConnected(emu, { dc: 2 });
  const config = (await withTimeout(client.invoke(new Api.help.GetConfig()))) as Api.Config;
  assert.is(config.thisDc, 2);
  assert.equal(config.dcOptions.map((o) => [o.id, `${o.ipAddress}:${o.port}`]), [1, 2, 3].map((dc) => [dc, emu.dcs[dc]]));
  const nearest = (await withTimeout(client.invoke(new Api.help.GetNearestDc()))) as Api.NearestDc;
  assert.is(nearest.thisDc, 2);
});

test('auth keys are per DC: a DC-2 key works on DC 2, DC 1 answers -404 for it; a DH on DC 3 counts there', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, dc: 2 });
  const session = await emu.createSession(p);
  const before = stats().byDc;
  const { client } = await dcConnected(emu, { session });
  assert.is(dcOf(client), 2, 'the minted session names the account DC');
  assert.is(Number((await withTimeout(client.getMe())).id), userId);
  assert.is(stats().byDc['2']!.handshakes, before['2']!.handshakes, 'a saved session reconnects with no new DH');
  assert.ok(stats().byDc['2']!.connections >= 1);
  const elsewhere = await RawClient.open(session, emu.host, emu.dcPort(1));
  await withTimeout(Promise.all([elsewhere.call(new Api.updates.GetState().getBytes()).catch(() => undefined), elsewhere.closed]), 5000, 'close');
  assert.is(elsewhere.transportError, -404);
  await dcConnected(emu, { dc: 3 });
  const after = stats().byDc;
  assert.is(after['3']!.handshakes, before['3']!.handshakes + 1);
  assert.is(after['1']!.handshakes, before['1']!.handshakes);
});

/** GramJS's own phone login: sendCode (GramJS follows PHONE_MIGRATE_X), then signIn. */
async function phoneLogin(client: TelegramClient, p: string): Promise<Api.auth.Authorization> {
  const { phoneCodeHash } = await withTimeout(client.sendCode(API, p));
  const code = emu.lastCode(p)!.code;
  return (await withTimeout(client.invoke(new Api.auth.SignIn({ phoneNumber: p, phoneCodeHash, phoneCode: code })))) as Api.auth.Authorization;
}

test('phone login of a DC-2 account from DC 1: PHONE_MIGRATE_2, GramJS moves to DC 2 and signs in there', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, dc: 2 });
  const before = stats();
  const { client } = await dcConnected(emu);
  assert.is(dcOf(client), 1);
  const auth = await phoneLogin(client, p);
  assert.is(Number(auth.user.id), userId);
  assert.is(dcOf(client), 2, 'GramJS switched its session to DC 2');
  assert.is(Number((await withTimeout(client.getMe())).id), userId);
  const after = stats();
  assert.is(after.migrationsServed, before.migrationsServed + 1);
  assert.is(after.byDc['2']!.activeAuthKeys, before.byDc['2']!.activeAuthKeys + 1);
  assert.is(after.byDc['1']!.activeAuthKeys, before.byDc['1']!.activeAuthKeys, 'nothing authorised on DC 1');
});

test('phone login of a DC-2 account with 2FA: the password is checked on DC 2', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, dc: 2, password: 'two dcs' });
  const { client } = await dcConnected(emu);
  assert.is(await rpcErrorOf(phoneLogin(client, p)), 'SESSION_PASSWORD_NEEDED');
  assert.is(dcOf(client), 2);
  const srp = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  const auth = (await withTimeout(client.invoke(new Api.auth.CheckPassword({ password: await password.computeCheck(srp, 'two dcs') })))) as Api.auth.Authorization;
  assert.is(Number(auth.user.id), userId);
});

test('a client that cannot retry sees PHONE_MIGRATE_3 itself (what requestRetries: 1 gives)', async () => {
  const p = phone();
  await emu.createUser({ phone: p, dc: 3 });
  const { client } = await dcConnected(emu, { requestRetries: 1 });
  // GramJS switches DC on PHONE_MIGRATE_3 but has no attempt left to send the code there.
  assert.is(await rpcErrorOf(client.sendCode(API, p)), 'Request was unsuccessful 1 time(s)');
  assert.is(emu.lastCode(p), undefined, 'no code was sent');
});

async function exportToken(client: TelegramClient): Promise<Api.auth.TypeLoginToken> {
  return (await withTimeout(client.invoke(new Api.auth.ExportLoginToken({ ...API, exceptIds: [] })))) as Api.auth.TypeLoginToken;
}

/** QR login on DC 1 accepted by `p`: the second export's answer. */
async function acceptedQr(client: TelegramClient, p: string): Promise<Api.auth.TypeLoginToken> {
  const scanned = new Promise<void>((resolve) => client.addEventHandler((u: unknown) => u instanceof Api.UpdateLoginToken && resolve()));
  const first = await exportToken(client);
  assert.instance(first, Api.auth.LoginToken);
  emu.acceptQr(Buffer.from((first as Api.auth.LoginToken).token).toString('base64url'), p);
  await withTimeout(scanned, 5000, 'updateLoginToken');
  return exportToken(client);
}

/** What GramJS's signInUserWithQrCode does with loginTokenMigrateTo: switch DC, import the token there. */
async function followMigrateTo(client: TelegramClient, to: Api.auth.LoginTokenMigrateTo): Promise<Api.auth.TypeLoginToken> {
  await withTimeout((client as unknown as { _switchDC(dc: number): Promise<void> })._switchDC(to.dcId), 15_000, 'switch DC');
  return (await withTimeout(client.invoke(new Api.auth.ImportLoginToken({ token: to.token })))) as Api.auth.TypeLoginToken;
}

test('QR login accepted by a DC-3 account: loginTokenMigrateTo, then importLoginToken on DC 3 logs in', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, dc: 3 });
  const { client } = await dcConnected(emu);
  const before = stats().migrationsServed;
  const second = await acceptedQr(client, p);
  assert.instance(second, Api.auth.LoginTokenMigrateTo);
  assert.is((second as Api.auth.LoginTokenMigrateTo).dcId, 3);
  assert.is(stats().migrationsServed, before + 1);
  const done = await followMigrateTo(client, second as Api.auth.LoginTokenMigrateTo);
  assert.instance(done, Api.auth.LoginTokenSuccess);
  assert.is(Number(((done as Api.auth.LoginTokenSuccess).authorization as Api.auth.Authorization).user.id), userId);
  assert.is(dcOf(client), 3);
  assert.is(Number((await withTimeout(client.getMe())).id), userId);
});

test('QR login of a DC-3 account with 2FA: importLoginToken answers SESSION_PASSWORD_NEEDED, the password finishes on DC 3', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, dc: 3, password: 'qr pw' });
  const { client } = await dcConnected(emu);
  const second = (await acceptedQr(client, p)) as Api.auth.LoginTokenMigrateTo;
  assert.is(await rpcErrorOf(followMigrateTo(client, second)), 'SESSION_PASSWORD_NEEDED');
  const srp = (await withTimeout(client.invoke(new Api.account.GetPassword()))) as Api.account.Password;
  const auth = (await withTimeout(client.invoke(new Api.auth.CheckPassword({ password: await password.computeCheck(srp, 'qr pw') })))) as Api.auth.Authorization;
  assert.is(Number(auth.user.id), userId);
  assert.is(dcOf(client), 3);
});

test('importLoginToken: on the wrong DC it migrates again, a used token is invalid, an old one expired', async () => {
  const p = phone();
  await emu.createUser({ phone: p, dc: 3 });
  const { client } = await dcConnected(emu);
  const to = (await acceptedQr(client, p)) as Api.auth.LoginTokenMigrateTo;
  const { client: onTwo } = await dcConnected(emu, { dc: 2, requestRetries: 1 });
  const again = (await withTimeout(onTwo.invoke(new Api.auth.ImportLoginToken({ token: to.token })))) as Api.auth.LoginTokenMigrateTo;
  assert.instance(again, Api.auth.LoginTokenMigrateTo);
  assert.is(again.dcId, 3);
  const { client: onThree } = await dcConnected(emu, { dc: 3, requestRetries: 1 });
  assert.instance(await withTimeout(onThree.invoke(new Api.auth.ImportLoginToken({ token: to.token }))), Api.auth.LoginTokenSuccess);
  const { client: late } = await dcConnected(emu, { dc: 3, requestRetries: 1 });
  assert.is(await rpcErrorOf(late.invoke(new Api.auth.ImportLoginToken({ token: to.token }))), 'AUTH_TOKEN_INVALID');
  const p2 = phone();
  await emu.createUser({ phone: p2, dc: 3 });
  const { client: slow } = await dcConnected(emu);
  const stale = (await acceptedQr(slow, p2)) as Api.auth.LoginTokenMigrateTo;
  clock.advance(31_000);
  assert.is(await rpcErrorOf(late.invoke(new Api.auth.ImportLoginToken({ token: stale.token }))), 'AUTH_TOKEN_EXPIRED');
});

test('exportAuthorization/importAuthorization: GramJS borrows a DC-1 sender for a DC-2 account; account calls there answer USER_MIGRATE_2', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, dc: 2 });
  const { client } = await dcConnected(emu, { session: await emu.createSession(p) });
  const before = stats();
  // GramJS's exported sender: DH on DC 1, auth.exportAuthorization on DC 2, auth.importAuthorization on DC 1.
  const sender = await withTimeout((client as unknown as { getSender(dc: number): Promise<{ send(r: unknown): Promise<unknown> }> }).getSender(1), 15_000, 'borrow');
  const after = stats();
  assert.is(after.byDc['1']!.handshakes, before.byDc['1']!.handshakes + 1);
  assert.is(after.byDc['1']!.activeAuthKeys, before.byDc['1']!.activeAuthKeys + 1, 'the DC-1 key is authorised for the account');
  const config = (await withTimeout(sender.send(new Api.help.GetConfig()))) as Api.Config;
  assert.is(config.thisDc, 1);
  assert.is(await rpcErrorOf(sender.send(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] }))), 'USER_MIGRATE_2');
  assert.is(stats().migrationsServed, after.migrationsServed + 1);
  assert.is(Number((await withTimeout(client.getMe())).id), userId, 'the home DC still serves it');
});

test('export/import rules: DC_ID_INVALID, bytes bound to the target DC and the user, used once', async () => {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, dc: 2 });
  const { client } = await dcConnected(emu, { session: await emu.createSession(p), requestRetries: 1 });
  for (const dcId of [2, 0, 4, 9]) assert.is(await rpcErrorOf(client.invoke(new Api.auth.ExportAuthorization({ dcId }))), 'DC_ID_INVALID', `dc ${dcId}`);
  const exported = (await withTimeout(client.invoke(new Api.auth.ExportAuthorization({ dcId: 3 })))) as Api.auth.ExportedAuthorization;
  assert.is(Number(exported.id), userId);
  const { client: one } = await dcConnected(emu, { dc: 1, requestRetries: 1 });
  assert.is(await rpcErrorOf(one.invoke(new Api.auth.ImportAuthorization({ id: exported.id, bytes: exported.bytes }))), 'AUTH_BYTES_INVALID');
  const { client: three } = await dcConnected(emu, { dc: 3, requestRetries: 1 });
  assert.is(await rpcErrorOf(three.invoke(new Api.auth.ImportAuthorization({ id: exported.id.add(1), bytes: exported.bytes }))), 'USER_ID_INVALID');
  const auth = (await withTimeout(three.invoke(new Api.auth.ImportAuthorization({ id: exported.id, bytes: exported.bytes })))) as Api.auth.Authorization;
  assert.is(Number(auth.user.id), userId);
  const { client: twice } = await dcConnected(emu, { dc: 3, requestRetries: 1 });
  assert.is(await rpcErrorOf(twice.invoke(new Api.auth.ImportAuthorization({ id: exported.id, bytes: exported.bytes }))), 'AUTH_BYTES_INVALID');
  const { client: fresh } = await dcConnected(emu, { dc: 1, requestRetries: 1 });
  assert.is(await rpcErrorOf(fresh.invoke(new Api.auth.ExportAuthorization({ dcId: 2 }))), 'AUTH_KEY_UNREGISTERED');
});

test('NETWORK_MIGRATE fault: the target\'s next matching request answers it once; a logged-out client follows it', async () => {
  const p = phone();
  await emu.createUser({ phone: p, dc: 2 });
  const { client } = await dcConnected(emu, { session: await emu.createSession(p) });
  emu.fault({ type: 'migrate', dc: 3, target: p, method: 'updates.getState' });
  assert.ok(await withTimeout(client.getMe()), 'other methods are not hit');
  const before = stats().migrationsServed;
  // GramJS raises NETWORK_MIGRATE to the caller once logged in (it only follows it for a logged-out client).
  assert.is(await rpcErrorOf(client.invoke(new Api.updates.GetState())), 'NETWORK_MIGRATE_3');
  assert.instance(await withTimeout(client.invoke(new Api.updates.GetState())), Api.updates.State);
  assert.is(stats().migrationsServed, before + 1);
  const q = phone();
  await emu.createUser({ phone: q });
  emu.fault({ type: 'migrate', dc: 2, method: 'auth.SendCode' });
  const { client: fresh } = await dcConnected(emu);
  const served = stats().migrationsServed;
  await phoneLogin(fresh, q);
  assert.is(dcOf(fresh), 1, 'NETWORK_MIGRATE_2, then PHONE_MIGRATE_1 back home');
  assert.is(stats().migrationsServed, served + 2);
});

test('one world across DCs: a DC-1 account writes to a DC-3 account, whose DC pushes the update', async () => {
  const a = phone();
  const b = phone();
  await emu.createUser({ phone: a, dc: 1 });
  const { userId: bId } = await emu.createUser({ phone: b, dc: 3, username: `dc3user${n}` });
  const { client: sender } = await dcConnected(emu, { session: await emu.createSession(a) });
  const { client: receiver } = await dcConnected(emu, { session: await emu.createSession(b) });
  const got = new Promise<NewMessageEvent>((resolve) => receiver.addEventHandler(resolve, new NewMessage({})));
  await withTimeout(receiver.invoke(new Api.updates.GetState()));
  const resolved = (await withTimeout(sender.invoke(new Api.contacts.ResolveUsername({ username: `dc3user${n}` })))) as Api.contacts.ResolvedPeer;
  const user = resolved.users[0] as Api.User;
  const peer = new Api.InputPeerUser({ userId: user.id, accessHash: user.accessHash! });
  await withTimeout(sender.invoke(new Api.messages.SendMessage({ peer, message: 'across DCs', randomId: helpers.generateRandomLong() })));
  const ev = await withTimeout(got, 5000, 'the update on DC 3');
  assert.is(ev.message.message, 'across DCs');
  assert.is(Number(user.id), bId);
});

test('ping_delay_disconnect: the server closes a connection that sends no ping within disconnect_delay', async () => {
  const p = phone();
  await emu.createUser({ phone: p });
  const raw = await RawClient.open(await emu.createSession(p), emu.host, emu.dcPort(1));
  await withTimeout(raw.call(new Api.updates.GetState().getBytes()));
  raw.send(new Api.PingDelayDisconnect({ pingId: helpers.returnBigInt(7), disconnectDelay: 1 }).getBytes());
  await withTimeout(raw.closed, 5000, 'the server closing the socket');
});

test.run();
