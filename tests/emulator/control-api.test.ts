import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api } from 'telegram';
import { startEmulator, type Emulator } from './index.ts';
import { API, connected, dcConnected, destroyAll, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// Every control API call over HTTP, and the standalone `npm run emulator` entry point.

let emu: Emulator;
test.before(async () => {
  emu = await startEmulator();
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

async function ctl(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emu.control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

test('POST /users, POST /bots, POST /chats, POST /updates, GET /messages', async () => {
  const alice = await ctl('POST', '/users', { phone: '+44 7700 900 501', firstName: 'Alice', username: 'alice_ctl' });
  assert.is(alice.status, 200);
  assert.type(alice.json.userId, 'number');
  assert.is((await ctl('POST', '/users', { phone: '+447700900501' })).status, 409);
  assert.is((await ctl('POST', '/users', { phone: 'not a phone' })).status, 400);
  const bob = (await ctl('POST', '/users', { phone: '+447700900502' })).json.userId as number;
  const bot = await ctl('POST', '/bots', { username: 'ctl_test_bot', token: '4242:AAH-fixed-token-for-the-control-test' });
  assert.equal(bot.json, { botId: 4242, token: '4242:AAH-fixed-token-for-the-control-test' });
  const chat = await ctl('POST', '/chats', {
    type: 'supergroup', title: 'Ctl', username: 'ctl_group', members: [{ id: alice.json.userId, role: 'creator' }, { id: bob, role: 'member' }, { id: 4242, role: 'admin' }],
  });
  assert.ok(String(chat.json.chatId).startsWith('-100'));
  assert.match(chat.json.inviteLink, /^https:\/\/t\.me\/\+[\w-]+$/);
  assert.is((await ctl('POST', '/chats', { type: 'supergroup', title: 'X', members: [{ id: 1, role: 'member' }] })).status, 400);
  const up = await ctl('POST', '/updates', { to: '+447700900501', fromUserId: bob, chatId: chat.json.chatId, text: 'in the group' });
  assert.type(up.json.messageId, 'number');
  await ctl('POST', '/updates', { to: 'ctl_test_bot', fromUserId: bob, text: 'to the bot' });
  assert.is((await ctl('POST', '/updates', { to: 'nobody_at_all', fromUserId: bob, text: 'x' })).status, 404);
  const all = (await ctl('GET', '/messages')).json as Array<{ chatId: number; fromId: number; text: string; randomId: null }>;
  assert.equal(all.map((m) => m.text), ['in the group', 'to the bot']);
  assert.equal((await ctl('GET', `/messages?chatId=${chat.json.chatId}`)).json.map((m: { text: string }) => m.text), ['in the group']);
  assert.equal((await ctl('GET', `/messages?chatId=4242&fromId=${bob}`)).json.length, 1);
  assert.equal(Object.keys(all[0]!).sort(), ['chatId', 'date', 'fromId', 'id', 'randomId', 'text']);
});

test('GET /users/{phone}/code and POST /qr/accept with a real GramJS client', async () => {
  const phone = '+447700900601';
  await ctl('POST', '/users', { phone });
  assert.is((await ctl('GET', `/users/${encodeURIComponent(phone)}/code`)).status, 404);
  const { client } = await connected(emu);
  await withTimeout(client.sendCode(API, phone));
  const code = await ctl('GET', `/users/${encodeURIComponent(phone)}/code`);
  assert.is(code.json.type, 'app');
  assert.match(code.json.code, /^\d{5}$/);
  const token = (await withTimeout(client.invoke(new Api.auth.ExportLoginToken({ ...API, exceptIds: [] })))) as Api.auth.LoginToken;
  const accepted = await ctl('POST', '/qr/accept', { token: Buffer.from(token.token).toString('base64url'), phone });
  assert.equal([accepted.status, accepted.json], [200, { ok: true }]);
  assert.instance(await withTimeout(client.invoke(new Api.auth.ExportLoginToken({ ...API, exceptIds: [] }))), Api.auth.LoginTokenSuccess);
  assert.is((await ctl('POST', '/qr/accept', { token: 'AAAA', phone })).status, 404);
});

test('POST /users takes dc, codeTypes, loginEmail, recoveryEmail; GET /users/{phone}/code and /recovery-code', async () => {
  const created = await ctl('POST', '/users', { phone: '+447700900701', dc: 2, codeTypes: ['sms', 'call'], recoveryEmail: 'gil@example.com', password: 'pw' });
  assert.is(created.status, 200);
  assert.is(emu.world.userByPhone('+447700900701')!.dc, 2);
  assert.is((await ctl('POST', '/users', { phone: '+447700900702', dc: 9 })).status, 400);
  assert.is((await ctl('POST', '/users', { phone: '+447700900703', codeTypes: 'sms' })).status, 400);
  assert.is((await ctl('POST', '/users', { phone: '+1' })).status, 400);
  const { client } = await dcConnected(emu, { dc: 2, requestRetries: 1 });
  await withTimeout(client.sendCode(API, '+447700900701'));
  const code = await ctl('GET', `/users/${encodeURIComponent('+447700900701')}/code`);
  assert.equal([code.status, code.json.type, code.json.code.length], [200, 'sms', 5]);
  assert.is((await ctl('GET', `/users/${encodeURIComponent('+447700900701')}/recovery-code`)).status, 404);
  assert.is((await ctl('GET', '/users/%2B449999999999/recovery-code')).status, 404);
});

test('POST /faults migrate: dc is required and must be served; method names one MTProto method', async () => {
  assert.is((await ctl('POST', '/faults', { type: 'migrate' })).status, 400);
  assert.is((await ctl('POST', '/faults', { type: 'migrate', dc: 4 })).status, 400);
  assert.is((await ctl('POST', '/faults', { type: 'migrate', dc: 2, method: 7 })).status, 400);
  assert.is((await ctl('POST', '/faults', { type: 'migrate', dc: 2, target: '+449999999999' })).status, 404);
  assert.is((await ctl('POST', '/faults', { type: 'migrate', dc: 2, method: 'help.getNearestDc', count: 1 })).status, 200);
  await ctl('POST', '/users', { phone: '+447700900704' });
  // Logged in, GramJS hands NETWORK_MIGRATE to the caller instead of moving.
  const { client } = await dcConnected(emu, { session: (await ctl('POST', '/sessions', { phone: '+447700900704' })).json.session, requestRetries: 1 });
  assert.is(await rpcErrorOf(client.invoke(new Api.help.GetNearestDc())), 'NETWORK_MIGRATE_2');
  assert.instance(await withTimeout(client.invoke(new Api.help.GetNearestDc())), Api.NearestDc);
});

test('POST /faults validates type and target; GET /stats; POST /sessions; POST /reset', async () => {
  assert.is((await ctl('POST', '/faults', { type: 'meteor-strike' })).status, 400);
  assert.is((await ctl('POST', '/faults', { type: 'flood-wait', target: '+449999999999', seconds: 3 })).status, 404);
  assert.is((await ctl('POST', '/faults', { type: 'flood-wait', seconds: 0 })).status, 400);
  for (const f of [
    { type: 'flood-wait', seconds: 2, count: 1 }, { type: 'latency', seconds: 0.01 }, { type: 'refuse-connections', seconds: 1 },
    { type: 'drop-connections' }, { type: 'clear' }, { type: 'revoke-session', target: '+447700900502' },
  ]) assert.is((await ctl('POST', '/faults', f)).status, 200, f.type);
  const session = await ctl('POST', '/sessions', { phone: '+447700900501' });
  assert.match(session.json.session, /^1/);
  const { client } = await connected(emu, session.json.session);
  assert.is((await withTimeout(client.getMe())).username, 'alice_ctl');
  const stats = (await ctl('GET', '/stats')).json;
  assert.equal(Object.keys(stats).sort(), [
    'activeAuthKeys', 'byDc', 'connections', 'connectionsAccepted', 'delivered', 'duplicateAuthKeyUse', 'floodWaitsServed', 'getUpdatesCalls',
    'handshakes', 'migrationsServed',
  ]);
  assert.equal(Object.keys(stats.byDc), ['1', '2', '3']);
  assert.equal(Object.keys(stats.byDc['1']).sort(), ['activeAuthKeys', 'connections', 'connectionsAccepted', 'handshakes']);
  assert.ok(stats.connections >= 1);
  assert.ok(stats.connectionsAccepted >= stats.connections);
  assert.ok(stats.activeAuthKeys >= 1);
  assert.is(stats.delivered, 2);
  assert.equal((await ctl('POST', '/reset')).json, { ok: true });
  const after = (await ctl('GET', '/stats')).json;
  assert.equal([after.activeAuthKeys, after.delivered, after.handshakes], [0, 0, 0]);
  assert.equal((await ctl('GET', '/messages')).json, []);
  assert.is((await ctl('POST', '/users', { phone: '+447700900501' })).status, 200, 'the phone is free again');
  assert.is((await ctl('GET', '/nope')).status, 404);
});

test('npm run emulator -- --dcs 2: prints one JSON line with the addresses of every DC, serves, exits on SIGTERM', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/emulator/main.ts', '--control-port', '0', '--dcs', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  try {
    const [line] = (await withTimeout(once(createInterface({ input: child.stdout! }), 'line'), 15_000, 'ready line')) as [string];
    const ready = JSON.parse(line) as Record<string, string> & { dcs: Record<string, string> };
    assert.equal(Object.keys(ready).sort(), ['botApi', 'control', 'dcs', 'mtproto', 'serverKeys']);
    assert.match(ready.mtproto, /^127\.0\.0\.1:\d+$/);
    assert.equal(Object.keys(ready.dcs), ['1', '2']);
    assert.is(ready.dcs['1'], ready.mtproto, 'mtproto is DC 1');
    assert.is.not(ready.dcs['2'], ready.mtproto);
    assert.match(ready.serverKeys, /\.pem$/);
    const stats = await (await fetch(`${ready.control}/stats`)).json() as { connections: number; byDc: Record<string, unknown> };
    assert.is(stats.connections, 0);
    assert.equal(Object.keys(stats.byDc), ['1', '2']);
  } finally {
    child.kill('SIGTERM'); // also when an assertion failed: a live child would hold the test runner's pipe open
  }
  const [code] = (await withTimeout(exited, 10_000, 'exit')) as [number];
  assert.is(code, 0);
});

test.run();
