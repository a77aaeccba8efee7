// Shard leases on a real Postgres: several Cluster instances (nodes) on one database, with a fake
// monotonic clock where the local deadline matters. Lease expiry itself is the database's clock.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster, type ShardListener } from '../../src/cluster/cluster.ts';
import { insertConnection, saveState } from '../../src/store/connections.ts';
import { listLeases } from '../../src/store/leases.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { quietLogger, until } from '../helpers/stack.ts';

let db: TestDatabase;
const nodes: Cluster[] = [];

test.before(async () => { db = await createTestDatabase(); });
test.after(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined);
  await db.drop();
});

const shards = 8;
const node = (id: string, o: { now?: () => number; ttlMs?: number; deadlineMs?: number; graceMs?: number } = {}) => {
  const c = new Cluster({
    sql: db.sql, nodeId: id, shards, ttlMs: o.ttlMs ?? 2000, deadlineMs: o.deadlineMs ?? 1200, renewMs: 100, logger: quietLogger(), listen: true,
    ...(o.now ? { now: o.now } : {}), ...(o.graceMs !== undefined ? { takeoverGraceMs: o.graceMs } : {}),
  });
  nodes.push(c);
  return c;
};

const recorder = () => {
  const held = new Set<number>();
  const l: ShardListener = {
    gained: (s) => { for (const x of s) held.add(x); },
    lost: async (s) => { for (const x of s) held.delete(x); },
  };
  return { held, l };
};

const owners = async () => (await listLeases(db.sql)).map((l) => l.owner);

test('a lone node takes every shard at start; a second one gets its share, one shard at a time; stop hands over at once', async () => {
  const a = node(`a-${randomUUID()}`);
  const ra = recorder();
  await a.start();
  a.subscribe(ra.l);
  assert.equal(a.heldShards(), [0, 1, 2, 3, 4, 5, 6, 7], 'all shards before start() resolves');
  assert.is(ra.held.size, 8);
  assert.ok((await owners()).every((o) => o === a.node));

  const b = node(`b-${randomUUID()}`);
  const rb = recorder();
  await b.start();
  b.subscribe(rb.l);
  await until(() => a.heldShards().length === 4 && b.heldShards().length === 4, 'an even split', 15_000);
  assert.is(ra.held.size, 4, 'the giver stopped what it handed over');
  assert.is(rb.held.size, 4);
  assert.equal(new Set([...a.heldShards(), ...b.heldShards()]).size, 8, 'no shard held twice');

  await a.stop();
  await until(() => b.heldShards().length === 8, 'the survivor takes the released shards', 5000);
  await b.stop();
  assert.ok((await owners()).every((o) => o === null), 'every lease free after both stopped');
});

test('a node past its local deadline fences itself; a write at the old epoch is refused once the lease was taken again', async () => {
  let clock = 0;
  const a = node(`a-${randomUUID()}`, { now: () => clock, ttlMs: 1500, deadlineMs: 900 });
  const lost: number[] = [];
  await a.start();
  a.subscribe({ gained: () => undefined, lost: async (s) => { lost.push(...s); } });
  const id = randomUUID();
  await insertConnection(db.sql, { id, owner: 'cluster-test', platform: 'telegram', kind: 'bot', shard: 3, machineVersion: 1 });
  const patch = { status: 'active' as const, statusChanged: true, snapshot: {}, machineVersion: 1, active: true, login: null, error: null };
  const stale = a.fence(3);
  assert.ok(await saveState(db.sql, id, patch, stale), 'the holder writes');

  // A frozen node: its monotonic clock jumps past the deadline before any renewal ran.
  clock += 1000;
  assert.not.ok(a.holds(3), 'holds() is false past the deadline, before any timer ran');
  await until(() => lost.includes(3), 'the fence timer stops the shard', 3000);
  // It gave the lease back and, alone, takes it again: at a new epoch.
  await until(() => a.holds(3), 'the shard taken again', 5000);
  assert.ok(a.fence(3).epoch > stale.epoch, 'a new epoch');
  assert.not.ok(await saveState(db.sql, id, patch, stale), 'a write at the old epoch is refused');
  assert.ok(await saveState(db.sql, id, patch, a.fence(3)), 'the current holder writes');
  await a.stop();
});

test('a shard taken back while its stop still runs (a database restart) starts only after that stop finished', async () => {
  let clock = 0;
  const a = node(`a-${randomUUID()}`, { now: () => clock, ttlMs: 1500, deadlineMs: 900 });
  await a.start();
  const events: string[] = [];
  let finishStop!: () => void;
  const stopHangs = new Promise<void>((r) => (finishStop = r));
  a.subscribe({
    gained: (s) => { events.push(`gained ${s.length}`); },
    // The first stop hangs as one does while its snapshot writes wait for a Postgres that is down.
    lost: async (s) => { events.push(`lost ${s.length}`); if (events.filter((e) => e.startsWith('lost')).length === 1) await stopHangs; },
  });
  try {
    assert.equal(events, ['gained 8']);
    clock += 1000; // past the local deadline: fenced; the leases are not released until the stop ends
    await until(() => events.includes('lost 8'), 'the fence', 3000);
    // Unreleased, they expire by the database's clock (1.5 s) and this node, alone, takes them again.
    await until(() => a.heldShards().length === 8, 'the shards taken again after their expiry', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(events, ['gained 8', 'lost 8'], 'not started while the old actors may still be registered');
    finishStop();
    await until(() => events.length === 3, 'started after the stop', 3000);
    assert.equal(events, ['gained 8', 'lost 8', 'gained 8']);
  } finally { finishStop(); }
  await a.stop();
});

test('a write refused for an epoch older than the lease held now (taken back after a database outage) names the lease as the reason and leaves the shard running', async () => {
  let clock = 0;
  const a = node(`a-${randomUUID()}`, { now: () => clock, ttlMs: 1500, deadlineMs: 900 });
  await a.start();
  const { held, l } = recorder();
  a.subscribe(l);
  try {
    const old = a.fence(0).epoch;
    clock += 1000; // past the local deadline: fenced; the leases expire and this node takes them again
    await until(() => a.heldShards().length === 8 && a.fence(0).epoch !== old, 'the shards taken again under a new epoch', 10_000);
    await until(() => held.size === 8, 'started again', 3000);
    // A send that named the old epoch was refused by the database: its copy must go back to the queue
    // (acked as stale, the row stayed queued and published, and nobody ever sent it).
    assert.ok(await a.refused(0, old), 'the old epoch is the reason');
    assert.not.ok(await a.refused(0, a.fence(0).epoch), 'at the current epoch the lease is not the reason');
    assert.is(held.size, 8, 'the shard keeps running under its new lease');
    assert.ok(a.holds(0));
  } finally { await a.stop(); }
});

test('a shard taken from an owner that did not give it back starts after the grace; released ones and a dead local owner\'s at once', async () => {
  // A frozen node elsewhere (its sockets may still be open) and a dead one on this host (its process is gone).
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const far = `far-${randomUUID()}`;
  const here = `here-${randomUUID()}`;
  await db.sql`insert into cluster_nodes (id, host, pid, last_seen_at) values
    (${far}, 'another-host', 1, now() - interval '1 hour'), (${here}, ${hostname()}, ${dead}, now() - interval '1 hour')`;
  await db.sql`update shard_leases set owner = ${far}, expires_at = now() - interval '100 milliseconds' where shard in (0, 1, 2, 3)`;
  await db.sql`update shard_leases set owner = ${here}, expires_at = now() - interval '100 milliseconds' where shard in (4, 5)`;
  await db.sql`update shard_leases set owner = null, expires_at = null where shard in (6, 7)`;

  const c = node(`c-${randomUUID()}`, { graceMs: 1500 });
  const rc = recorder();
  await c.start();
  c.subscribe(rc.l);
  assert.ok((await owners()).every((o) => o === c.node), 'every lease is taken at once');
  assert.equal(c.heldShards(), [4, 5, 6, 7], 'released and dead-local shards run at once');
  assert.equal(c.state().waiting, [0, 1, 2, 3], 'the frozen owner\'s shards wait out the grace');
  assert.not.ok(c.holds(0), 'nothing of a waiting shard runs');
  assert.equal([...rc.held].sort(), [4, 5, 6, 7]);
  await until(() => rc.held.size === 8, 'the waiting shards start once the grace is over', 10_000);
  assert.equal(c.heldShards(), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(c.state().waiting, []);
  await c.stop();
});

test('a daemon restarted with a fixed NODE_ID takes its dead predecessor\'s unreleased leases at once', async () => {
  const id = `fixed-${randomUUID()}`;
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  await db.sql`insert into cluster_nodes (id, host, pid, last_seen_at) values (${id}, ${hostname()}, ${dead}, now())`;
  // Held by the crashed process under the same id, still unexpired: without the pid check these
  // would wait for the TTL and then the takeover grace.
  await db.sql`update shard_leases set owner = ${id}, expires_at = now() + interval '1 hour'`;
  const c = node(id, { graceMs: 60_000 });
  await c.start();
  assert.equal(c.heldShards(), [0, 1, 2, 3, 4, 5, 6, 7], 'every shard runs at once');
  assert.equal(c.state().waiting, []);
  await c.stop();
});

test.run();
