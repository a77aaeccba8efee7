// A node that does not hold a connection's shard (several daemons on one database): it creates the
// row but does not run the actor (the owner is told and starts it), and calls that need the running
// actor fail with NotOwnerError (503 DEPENDENCY_UNAVAILABLE, Retry-After 1, naming the shard) instead of
// running a second copy here; over HTTP the forward plugin passes them on to the owner (forward.e2e.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NotOwnerError } from '../../src/cluster/forward.ts';
import { Connections } from '../../src/connections/service.ts';
import { AppError } from '../../src/errors.ts';
import { shardOf } from '../../src/shard.ts';
import type { ShardOwnership } from '../../src/supervisor/types.ts';
import { quietLogger, startStack, type Stack } from '../helpers/stack.ts';

const OWNER = 'non-owner-test';
const announced: string[] = [];
// Holds no shard at all.
const elsewhere: ShardOwnership = { node: 'n-test', holds: () => false, fence: () => ({ node: 'n-test', epoch: -1 }), refused: async () => true };
let s: Stack;

test.before(async () => {
  s = await startStack({ supervisor: { cluster: elsewhere } });
  // The service of this stack, told how to announce new connections to their owner.
  s.connections = new Connections({
    sql: s.db.sql, keyring: s.keyring, platforms: s.platforms, supervisor: s.supervisor, logger: quietLogger(),
    shards: 4, announce: async (id) => { announced.push(id); },
  });
});
test.after(async () => { await s?.close(); });

test('a connection created on a node without its shard is stored and announced, not run here; owner-only calls answer 503 with Retry-After', async () => {
  const bot = s.emu.createBot({ username: `no${process.pid}x_bot` });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(c.status, 'connecting', 'the stored row: no actor ran');
  assert.equal(announced, [c.id], 'the owner is told');
  assert.is(s.supervisor.size, 0);
  for (const call of [() => s.connections.reconnect(OWNER, c.id), () => s.connections.checkChat(OWNER, c.id, '@somewhere')]) {
    const err = await call().catch((e: unknown) => e);
    assert.instance(err, AppError);
    assert.is((err as AppError).code, 'DEPENDENCY_UNAVAILABLE');
    assert.is((err as AppError).retryAfter, 1);
    assert.instance(err, NotOwnerError);
    assert.is((err as NotOwnerError).shard, shardOf(c.id, 4), 'names the shard, for the forward');
  }
  assert.is(s.supervisor.size, 0, 'still nothing runs here');
});

test.run();
