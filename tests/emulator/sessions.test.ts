import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api } from 'telegram';
import { UpdateConnectionState } from 'telegram/network/index.js';
import { startEmulator, type Emulator } from './index.ts';
import { connected, destroyAll, newClient, rpcErrorOf, until, withTimeout } from './support/gramjs.ts';

// Session rules and connection faults, seen by the real GramJS client.

let emu: Emulator;
let n = 0;
const phone = () => `+4477007${String(10_000 + ++n).slice(1)}`;

test.before(async () => {
  emu = await startEmulator();
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

async function session() {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p });
  return { phone: p, userId, session: await emu.createSession(p) };
}

test('the same auth key on a second live connection → AUTH_KEY_DUPLICATED (counted); the first keeps working', async () => {
  const s = await session();
  const first = await connected(emu, s.session);
  const before = emu.stats().duplicateAuthKeyUse;
  const second = newClient(emu, s.session);
  assert.is(await rpcErrorOf(second.client.connect()), 'AUTH_KEY_DUPLICATED');
  assert.is(emu.stats().duplicateAuthKeyUse, before + 1);
  assert.is(Number((await withTimeout(first.client.getMe())).id), s.userId);
});

test('revoke-session → AUTH_KEY_UNREGISTERED on every later call', async () => {
  const s = await session();
  const { client } = await connected(emu, s.session);
  await withTimeout(client.getMe());
  const res = await fetch(`${emu.control}/faults`, { method: 'POST', body: JSON.stringify({ type: 'revoke-session', target: s.phone }) });
  assert.is(res.status, 200);
  assert.is(await rpcErrorOf(client.invoke(new Api.updates.GetState())), 'AUTH_KEY_UNREGISTERED');
  assert.is(await rpcErrorOf(client.invoke(new Api.help.GetConfig())), 'AUTH_KEY_UNREGISTERED');
  assert.is(emu.stats().activeAuthKeys, emu.world.stats().activeAuthKeys);
  // a fresh connection with the revoked key fails at connect
  await withTimeout(client.destroy());
  assert.is(await rpcErrorOf(newClient(emu, s.session).client.connect()), 'AUTH_KEY_UNREGISTERED');
});

test('drop-connections: GramJS reconnects on its own and calls work again', async () => {
  const s = await session();
  const { client } = await connected(emu, s.session);
  const states: number[] = [];
  client.addEventHandler((u: unknown) => {
    if (u instanceof UpdateConnectionState) states.push(u.state);
  });
  await withTimeout(client.getMe());
  const before = emu.stats().connections;
  emu.fault({ type: 'drop-connections', target: s.userId });
  await until(() => states.includes(UpdateConnectionState.disconnected), 5000, 'disconnect seen');
  // GramJS waits 1 s before reconnecting (MTProtoSender.reconnect), then resends pending calls.
  await until(() => emu.stats().connections === before && states.at(-1) === UpdateConnectionState.connected, 10_000, 'reconnected');
  assert.is(Number((await withTimeout(client.getMe())).id), s.userId);
});

test('refuse-connections: new connections are closed until the fault is cleared', async () => {
  const s = await session();
  emu.fault({ type: 'refuse-connections' });
  const refused = newClient(emu, s.session);
  assert.match(await rpcErrorOf(withTimeout(refused.client.connect(), 2000, 'connect')), /timed out|Not connected|closed/i);
  await withTimeout(refused.client.destroy()).catch(() => undefined);
  emu.fault({ type: 'clear' });
  const { client } = await connected(emu, s.session);
  assert.is(Number((await withTimeout(client.getMe())).id), s.userId);
});

test('latency delays every answer by the given seconds', async () => {
  const s = await session();
  const { client } = await connected(emu, s.session);
  emu.fault({ type: 'latency', target: s.phone, seconds: 0.3 });
  const t0 = Date.now();
  await withTimeout(client.invoke(new Api.updates.GetState()));
  assert.ok(Date.now() - t0 >= 300, `took ${Date.now() - t0} ms`);
  emu.fault({ type: 'clear' });
});

test.run();
