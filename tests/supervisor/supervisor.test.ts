// The supervision core and the connection service driven through the FAKE platform adapter
// (tests/helpers/fake-platform.ts): create → login → active → error → restart → breaker → delete, and
// the path of every error category, on the real store (a fresh local Postgres database) with no
// network. Nothing here knows Telegram: if this suite passes, the platform interface is the seam.
import { randomBytes, randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Connections } from '../../src/connections/service.ts';
import { openKeyring, type Keyring } from '../../src/crypto/keyring.ts';
import { AppError, errorSpec } from '../../src/errors.ts';
import type { OutboundMessage } from '../../src/platforms/adapter.ts';
import { Platforms } from '../../src/platforms/registry.ts';
import { declarePlatformKinds } from '../../src/store/connections.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { allCategories, fakeAdapter, fakeCodes, fakeError, FakeWorld } from '../helpers/fake-platform.ts';
import { quietLogger, until } from '../helpers/stack.ts';

let db: TestDatabase;
let keyring: Keyring;
let world: FakeWorld;
let platforms: Platforms;
let supervisor: Supervisor;
let service: Connections;
const activated: string[] = [];

const make = (o: { restartMax?: number } = {}) => new Supervisor({
  sql: db.sql, keyring, platforms, logger: quietLogger(), shards: 4,
  memoryBudgetBytes: 50 * 1024 * 1024, restart: { max: o.restartMax ?? 3, windowS: 60 }, breakerHalfOpenS: 30,
  backoff: { baseMs: 10, capMs: 40 }, persistDebounceMs: 5, stepTimeoutMs: 2000,
  onActive: (id) => activated.push(id),
});

const setup = async () => {
  db = await createTestDatabase();
  keyring = await openKeyring({ keyringKey: randomBytes(32) });
  world = new FakeWorld();
  platforms = new Platforms([fakeAdapter(world)]);
  await declarePlatformKinds(db.sql, platforms.pairs());
  supervisor = make();
  await supervisor.start();
  service = new Connections({ sql: db.sql, keyring, platforms, supervisor, logger: quietLogger(), shards: 4 });
};
const teardown = async () => {
  await supervisor.stop();
  await keyring.close();
  await db.drop();
};

const OWNER = 'fiona';
const statusOf = async (id: string) => (await service.get(OWNER, id)).status;
const tokenConnection = async () => {
  const token = randomUUID();
  world.tokens.add(token);
  return service.create(OWNER, { platform: 'fake', kind: 'token', token });
};
const message = (connectionId: string, text = 'hi'): OutboundMessage => ({
  id: randomUUID(), owner: OWNER, connectionId, chat: 'c1', text, silent: false, priority: 'normal', attempts: 1, createdAt: new Date(),
});
const failure = (p: Promise<unknown>): Promise<AppError> => p.then(() => { throw new Error('should have failed'); }, (e: unknown) => e as AppError);

// ---------------------------------------------------------------------------------------------

const lifecycle = suite('supervisor + connection service over the fake platform');
lifecycle.before(setup);
lifecycle.after(teardown);

lifecycle('token kind: the platform checks the request; a refusal stores nothing', async () => {
  const c = await tokenConnection();
  assert.is(c.platform, 'fake');
  assert.is(c.kind, 'token');
  assert.is(c.status, 'active');
  assert.is(c.platformUserId?.startsWith('t-'), true);
  await until(() => activated.includes(c.id), 'onActive told');
  const e = await failure(service.create(OWNER, { platform: 'fake', kind: 'token', token: 'unknown' }));
  assert.is(e.code, 'FAKE_BANNED');
  assert.is(e.status, 422);
  assert.is((await service.list(OWNER, { limit: 10 })).items.length, 1, 'nothing stored for the refused token');
  const dup = await failure(service.create(OWNER, { platform: 'fake', kind: 'token', token: [...world.tokens][0]! }));
  assert.is(dup.code, 'INVALID_STATE', 'one account is connected once per owner');
});

lifecycle('code kind: awaiting-code → a rejected code answers its code and stays → the right one is active', async () => {
  world.codes.set('4242', { platformUserId: 'acc-1', displayName: 'Ann' });
  const c = await service.create(OWNER, { platform: 'fake', kind: 'code' });
  assert.is(c.status, 'awaiting-code');
  const wrong = await failure(service.submitCode(OWNER, c.id, '0000'));
  assert.is(wrong.code, 'FAKE_CODE_INVALID');
  assert.is(wrong.status, 422);
  assert.is(await statusOf(c.id), 'awaiting-code');
  assert.is((await failure(service.submitCode('mallory', c.id, '4242'))).code, 'NOT_FOUND');
  assert.is((await failure(service.submitPassword(OWNER, c.id, 'pw'))).code, 'INVALID_STATE', 'a step the machine does not take now is 409');
  const ok = await service.submitCode(OWNER, c.id, '4242');
  assert.is(ok.status, 'active');
  assert.is(ok.displayName, 'Ann');
  assert.is((await failure(service.submitCode(OWNER, c.id, '4242'))).code, 'INVALID_STATE');
});

lifecycle('retry at connect: backs off and comes back active, no person needed', async () => {
  const token = randomUUID();
  world.tokens.add(token);
  // The id is not known before create: script every connection that connects next.
  const real = world.run.bind(world);
  let failed = 0;
  world.run = (async (id: string, step: string, fallback: () => unknown, arg?: unknown) => {
    if (step === 'connect' && failed < 2) { failed++; world.calls.push({ connectionId: id, step }); throw fakeError('FAKE_DOWN'); }
    return real(id, step as never, fallback, arg);
  }) as typeof world.run;
  try {
    const c = await service.create(OWNER, { platform: 'fake', kind: 'token', token });
    await until(async () => (await statusOf(c.id)) === 'active', 'active after the backoff');
    assert.is(world.count(c.id, 'connect'), 3);
  } finally {
    world.run = real;
  }
});

lifecycle('send failures by category: only those about the connection move it', async () => {
  const c = await tokenConnection();
  const cases: Array<[AppError, string]> = [
    [fakeError('FAKE_REFUSED'), 'active'],
    [fakeError('FAKE_SLOW_DOWN', { retryAfter: 5 }), 'active'],
    [fakeError('FAKE_QUOTA', { retryAfter: 3600 }), 'active'],
    [fakeError('FAKE_DOWN'), 'active'], // the platform answered 5xx: one request failed, the link is fine
    [fakeError('FAKE_NO_ANSWER'), 'active'],
  ];
  for (const [err, status] of cases) {
    world.script(c.id, { send: [err] });
    const e = await failure(supervisor.send(message(c.id)));
    assert.is(e.code, err.code);
    assert.is(e.category, errorSpec(err.code)!.category);
    assert.is(await statusOf(c.id), status, err.code);
  }
  assert.ok((await supervisor.send(message(c.id))).platformMessageId);
});

lifecycle('a link without answers reconnects; revoked or fatal ends in error', async () => {
  for (const [err, after] of [
    [fakeError('FAKE_DOWN', { scope: 'connection' }), 'active'],
    [fakeError('FAKE_NO_ANSWER', { scope: 'connection' }), 'active'],
    [fakeError('FAKE_REVOKED'), 'error'],
    [fakeError('FAKE_BANNED'), 'error'],
  ] as const) {
    const c = await tokenConnection();
    world.script(c.id, { send: [err] });
    await failure(supervisor.send(message(c.id)));
    if (after === 'active') {
      await until(() => world.count(c.id, 'connect') >= 2, `${err.code}: reconnected`);
      await until(async () => (await statusOf(c.id)) === 'active', `${err.code}: active again`);
    } else {
      await until(async () => (await statusOf(c.id)) === 'error', `${err.code}: error`);
      assert.is((await service.get(OWNER, c.id)).error?.code, err.code);
      const e = await failure(supervisor.send(message(c.id)));
      assert.is(e.code, 'CONNECTION_NOT_ACTIVE');
    }
  }
});

lifecycle('a rate limit at connect is waited out, never an error', async () => {
  const c = await tokenConnection();
  world.script(c.id, { connect: [fakeError('FAKE_SLOW_DOWN', { retryAfter: 0.05 })] });
  await service.reconnect(OWNER, c.id);
  await until(() => world.count(c.id, 'connect') >= 3, 'connect after the wait');
  await until(async () => (await statusOf(c.id)) === 'active', 'active');
});

lifecycle('the watcher: a dropped link reconnects, revoked credentials end in error', async () => {
  const c = await tokenConnection();
  await until(() => world.watchers.has(c.id), 'watching');
  world.push(c.id, { type: 'CONNECTION_DROPPED' });
  await until(() => world.count(c.id, 'connect') >= 2, 'reconnected');
  await until(() => world.watchers.has(c.id), 'watching again');
  world.push(c.id, { type: 'REVOKED' });
  await until(async () => (await statusOf(c.id)) === 'error', 'error');
  assert.is((await service.get(OWNER, c.id)).error?.code, 'FAKE_REVOKED');
  await service.reconnect(OWNER, c.id);
  await until(async () => (await statusOf(c.id)) === 'active', 'a person reconnects it');
});

lifecycle('breaker: repeated failed connects open it (CIRCUIT_OPEN), reconnect resets it', async () => {
  const c = await tokenConnection();
  world.script(c.id, { connect: Array.from({ length: 10 }, () => fakeError('FAKE_DOWN')) });
  world.push(c.id, { type: 'CONNECTION_DROPPED' });
  await until(async () => (await service.get(OWNER, c.id)).error?.code === 'CIRCUIT_OPEN', 'breaker open', 5000);
  assert.is(await statusOf(c.id), 'error');
  const e = await failure(supervisor.send(message(c.id)));
  assert.is(e.code, 'CIRCUIT_OPEN');
  assert.ok(e.retryAfter! > 0);
  world.scripts.delete(c.id);
  await service.reconnect(OWNER, c.id);
  await until(async () => (await statusOf(c.id)) === 'active', 'active after reconnect');
});

lifecycle('restart: restored from the stored snapshot; a snapshot of another machine version starts afresh', async () => {
  const c = await tokenConnection();
  const summary = supervisor.actor(c.id)!;
  assert.ok(await supervisor.restart(c.id));
  await until(async () => (await statusOf(c.id)) === 'active', 'active after restart');
  assert.is(supervisor.actor(c.id)!.restarts, summary.restarts + 1);
  // A row written by another machine version: its snapshot is not restored. restart() starts the actor
  // through run(), which checks the version (restart used to restore any snapshot); the live actor is
  // taken down first, as restart's own shutdown would persist the current version over the row.
  const rt = supervisor.live(OWNER, c.id)!;
  await supervisor.remove(rt, false);
  await db.sql`update connections set machine_version = 99, snapshot = ${db.sql.json({ value: 'nonsense', context: {} } as never)} where id = ${c.id}`;
  const [row] = await db.sql`select * from connections where id = ${c.id}`;
  const again = supervisor.run(row as never);
  await until(() => again.status === 'active', 'active from its input, the foreign snapshot ignored');
});

lifecycle('delete: logs out at the platform, stops the actor, removes the rows', async () => {
  const c = await tokenConnection();
  await service.remove(OWNER, c.id);
  assert.is(world.count(c.id, 'logOut'), 1);
  assert.is((await failure(service.get(OWNER, c.id))).code, 'NOT_FOUND');
  assert.is(supervisor.live(OWNER, c.id), undefined);
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from connection_secrets where connection_id = ${c.id}`;
  assert.is(n, 0);
});

lifecycle('every category is covered by a code of the fake platform', () => {
  const covered = new Set(Object.values(fakeCodes).map((s) => s.category));
  assert.equal(allCategories.filter((c) => !covered.has(c)), []);
});

lifecycle.run();

const shardsSuite = suite('supervisor with shard leases');
shardsSuite.before(setup);
shardsSuite.after(teardown);

shardsSuite('a shard whose first page of rows failed (a database just restarted) is started again while still held', async () => {
  const c = await tokenConnection();
  const [{ shard }] = await db.sql<{ shard: number }[]>`select shard from connections where id = ${c.id}`;
  await supervisor.remove(supervisor.live(OWNER, c.id)!, true);
  let failNext = false;
  const flaky = new Proxy(db.sql, {
    apply(target, self, args) {
      if (failNext) { failNext = false; throw new Error('connection refused'); }
      return Reflect.apply(target as never, self, args);
    },
  });
  const held = new Set([shard]);
  const leased = new Supervisor({
    sql: flaky, keyring, platforms, logger: quietLogger(), shards: 4,
    memoryBudgetBytes: 50 * 1024 * 1024, restart: { max: 3, windowS: 60 }, breakerHalfOpenS: 30,
    backoff: { baseMs: 10, capMs: 40 }, persistDebounceMs: 5, stepTimeoutMs: 2000,
    cluster: { node: 'n1', holds: (s) => held.has(s), fence: () => ({ node: 'n1', epoch: 1 }), refused: async () => false },
  });
  try {
    await db.sql`insert into shard_leases (shard, owner, epoch, expires_at) values (${shard}, 'n1', 1, now() + interval '1 hour')
      on conflict (shard) do update set owner = 'n1', epoch = 1, expires_at = now() + interval '1 hour'`;
    await leased.start();
    failNext = true;
    assert.is(await leased.startShards([shard]), 0, 'the first try failed');
    await until(() => leased.live(OWNER, c.id)?.status === 'active', 'started by the next try', 5000);
  } finally {
    await leased.stop();
  }
});

shardsSuite('a runtime stopped while the database is down writes nothing after its stop (it would land over the next runtime of the connection)', async () => {
  const c = await tokenConnection();
  const [{ shard }] = await db.sql<{ shard: number }[]>`select shard from connections where id = ${c.id}`;
  await supervisor.remove(supervisor.live(OWNER, c.id)!, true);
  let down = false;
  let triedWhileDown = 0;
  const flaky = new Proxy(db.sql, {
    apply(target, self, args) {
      if (down) { triedWhileDown++; throw new Error('connection refused'); }
      return Reflect.apply(target as never, self, args);
    },
  });
  const leased = new Supervisor({
    sql: flaky, keyring, platforms, logger: quietLogger(), shards: 4,
    memoryBudgetBytes: 50 * 1024 * 1024, restart: { max: 3, windowS: 60 }, breakerHalfOpenS: 30,
    backoff: { baseMs: 10, capMs: 40 }, persistDebounceMs: 5, stepTimeoutMs: 2000,
    cluster: { node: 'n1', holds: () => true, fence: () => ({ node: 'n1', epoch: 1 }), refused: async () => false },
  });
  try {
    await db.sql`insert into shard_leases (shard, owner, epoch, expires_at) values (${shard}, 'n1', 1, now() + interval '1 hour')
      on conflict (shard) do update set owner = 'n1', epoch = 1, expires_at = now() + interval '1 hour'`;
    await leased.start();
    await leased.startShards([shard]);
    await until(() => leased.live(OWNER, c.id)?.status === 'active', 'running');
    down = true;
    // Earlier tests' connections may share the shard: they stop with it.
    assert.ok(await leased.stopShards([shard]) >= 1);
    const afterStop = triedWhileDown;
    assert.ok(afterStop >= 1, 'the last write was tried');
    // A failed write is tried again after 1 s while the runtime runs; a stopped one must not be.
    await new Promise((r) => setTimeout(r, 1500));
    assert.is(triedWhileDown, afterStop, 'no write after the stop returned');
  } finally {
    down = false;
    await leased.stop();
  }
});

shardsSuite.run();
