// The keepalive that replaced GramJS's 9 s ping loop, end to end: a half-dead link (the socket
// stays open but the DC stops answering in time) is noticed by the heartbeat and the account goes
// back through connecting, while its neighbour stays active; once the DC answers again it is active.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => {
  s = await startStack({
    account: { heartbeatMs: 300, callTimeoutMs: 400, connectTimeoutMs: 1000 },
    supervisor: { restart: { max: 50, windowS: 60 }, backoff: { baseMs: 100, capMs: 500 } },
  });
});
test.after(async () => { await s.close(); });

const OWNER = 'kee';
const statusOf = async (id: string) => (await s.connections.get(OWNER, id)).status;

async function activeAccount(): Promise<{ id: string; phone: string }> {
  const phone = newPhone();
  await s.emu.createUser({ phone });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  // With 400 ms call timeouts a loaded machine can answer create while the first connect backs off.
  await until(async () => (await statusOf(c.id)) === 'awaiting-code', 'the code was sent', 10_000);
  assert.is((await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code)).status, 'active');
  return { id: c.id, phone };
}

test('a half-dead link is noticed by the keepalive; the neighbour stays active; back active once answers return', async () => {
  const slow = await activeAccount();
  const healthy = await activeAccount();
  const restarts = s.supervisor.actor(slow.id)!.restarts;
  const dupBefore = s.emu.stats().duplicateAuthKeyUse;
  s.emu.fault({ type: 'latency', target: slow.phone, seconds: 3 });
  await until(async () => (await statusOf(slow.id)) === 'connecting', 'the half-dead account noticed', 5000);
  assert.ok(s.supervisor.actor(slow.id)!.restarts > restarts, 'counted as a drop');
  assert.is(await statusOf(healthy.id), 'active');
  s.emu.fault({ type: 'clear' });
  await until(async () => (await statusOf(slow.id)) === 'active', 'active again', 10_000);
  assert.is(await statusOf(healthy.id), 'active');
  assert.is(s.emu.stats().duplicateAuthKeyUse, dupBefore);
});

test.run();
