// A connection stopped while its Telegram client is still connecting (its shard handed over to another
// daemon mid-connect, common in a rolling restart where every handover reconnects accounts): the client
// that comes up after the stop must be closed at once and before the stop resolves, or it holds the auth
// key while the next owner connects with it and Telegram answers that owner AUTH_KEY_DUPLICATED.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shardOf } from '../../src/shard.ts';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack({ supervisor: { backoff: { baseMs: 100, capMs: 500 } } }); });
test.after(async () => { await s.close(); });

const OWNER = 'handover';
const statusOf = async (id: string) => (await s.connections.get(OWNER, id)).status;

test('stopped while connecting: the late client is closed before the stop resolves; the next start uses the key alone', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  await until(async () => (await statusOf(c.id)) === 'awaiting-code', 'the code was sent', 10_000);
  assert.is((await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code)).status, 'active');
  const shard = shardOf(c.id, 4);
  await s.supervisor.stopShards([shard]);
  // The DC notices the closed socket a moment after the client closed it.
  await until(() => s.emu.stats().connections === 0, 'stopped: no socket left at the DC', 2000);
  const dup = s.emu.stats().duplicateAuthKeyUse;

  // Each answer of the DC now takes 1.5 s: the start below is still connecting when the stop comes.
  s.emu.fault({ type: 'latency', target: phone, seconds: 1.5 });
  void s.supervisor.startShards([shard]);
  await until(() => s.supervisor.actor(c.id) !== undefined, 'the actor started', 5000);
  await new Promise((r) => setTimeout(r, 300));
  assert.is(s.supervisor.actor(c.id)?.state, 'connecting', 'still connecting');
  await s.supervisor.stopShards([shard]);
  s.emu.fault({ type: 'clear' });
  await new Promise((r) => setTimeout(r, 4000)); // past the slow open's answers
  assert.is(s.emu.stats().connections, 0, 'no client left holding the key after the stop');

  await s.supervisor.startShards([shard]);
  await until(async () => (await statusOf(c.id)) === 'active', 'active again on the next start', 15_000);
  assert.is(s.emu.stats().connections, 1);
  assert.is(s.emu.stats().duplicateAuthKeyUse, dup, 'the key was never live twice');
});

test.run();
