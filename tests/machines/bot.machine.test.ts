// Bot machine: flows with scripted fake slots under SimulatedClock, graph coverage, restore.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, type EventObject, type Snapshot } from 'xstate';
import { botMachine as makeBotMachine, migrateBotSnapshot, statusOf, type BotInput } from '../../machines/bot.machine.ts';
import type { ConnectOutput, LifecycleEvent, StepInput } from '../../machines/connection.ts';
import { botErrors } from '../../src/platforms/telegram/bot-driver.ts';
import { toStoredSnapshot } from '../../machines/persistence.ts';
import { afterEvents, explore } from './graph-coverage.ts';
import { Fakes, HANG, T0, err, flush, testClock, type TestClock } from './harness.ts';

const BOT = { platformUserId: '123456', displayName: 'Shop Bot', username: 'shop_bot' };
const ok = (value: unknown) => ({ ok: value });
// connect is getMe: a bot is authorised as soon as Telegram knows its token.
const ME = ok({ authorized: true, profile: BOT });
type BotEvent = LifecycleEvent;
/** The bot machine in Telegram's words (as the Telegram adapter builds it). */
const botMachine = makeBotMachine(botErrors);

const startBot = async (fakes: Fakes, opts: { clock?: TestClock; snapshot?: unknown; input?: Partial<BotInput> } = {}) => {
  const clock = opts.clock ?? testClock();
  const machine = botMachine.provide({
    actors: {
      connect: fakes.promise<ConnectOutput, StepInput>('connect'),
      logOut: fakes.promise<void, StepInput>('logOut'),
      watch: fakes.watch<BotEvent, StepInput>(),
    },
  });
  const statuses: string[] = [];
  const actor = createActor(machine, {
    input: { connectionId: `bot-${Math.random().toString(36).slice(2)}`, ...opts.input },
    clock,
    ...(opts.snapshot ? { snapshot: opts.snapshot as Snapshot<unknown> } : {}),
  });
  actor.subscribe((s) => {
    if (statuses.at(-1) !== statusOf(s)) statuses.push(statusOf(s));
  });
  actor.start();
  await flush();
  const step = async (event?: BotEvent, ms = 0) => {
    if (event) actor.send(event);
    clock.increment(ms);
    await flush();
  };
  return { actor, clock, statuses, step, status: () => statusOf(actor.getSnapshot()), ctx: () => actor.getSnapshot().context };
};

const store = (actor: { getPersistedSnapshot(): unknown; stop(): void }) => {
  const row = JSON.stringify(toStoredSnapshot(actor.getPersistedSnapshot()));
  actor.stop();
  return JSON.parse(row) as unknown;
};

const flows = suite('bot: flows');

flows('connect (getMe) → active with the profile, watcher running', async () => {
  const fakes = new Fakes().script('connect', ME);
  const bot = await startBot(fakes);
  assert.is(bot.status(), 'active');
  assert.equal(bot.ctx().profile, BOT);
  assert.equal(fakes.calls.connect, [{ connectionId: bot.ctx().connectionId }], 'no token in the input');
  assert.is(fakes.liveWatchers, 1);
  assert.is(bot.ctx().lastActiveAt, T0);
  bot.actor.stop();
});

flows('invalid token → error TG_BOT_TOKEN_INVALID, no retries', async () => {
  const fakes = new Fakes().byDefault('connect', err('TG_BOT_TOKEN_INVALID'));
  const bot = await startBot(fakes);
  assert.is(bot.status(), 'error');
  assert.is(bot.ctx().error?.code, 'TG_BOT_TOKEN_INVALID');
  await bot.step(undefined, 3_600_000);
  assert.is(fakes.count('connect'), 1);
  bot.actor.stop();
});

flows('transient failures back off 1 s, 2 s, then active', async () => {
  const fakes = new Fakes().script('connect', err('TG_UNAVAILABLE'), err('TG_UNAVAILABLE'), ME);
  const bot = await startBot(fakes);
  assert.equal(bot.actor.getSnapshot().value, { connecting: 'wait' });
  assert.is(bot.ctx().error?.retryAt, T0 + 1000);
  await bot.step(undefined, 1000);
  assert.is(bot.ctx().error?.retryAt, T0 + 3000);
  await bot.step(undefined, 1999);
  assert.is(fakes.count('connect'), 2);
  await bot.step(undefined, 1);
  assert.is(bot.status(), 'active');
  assert.is(bot.ctx().attempt, 0);
  bot.actor.stop();
});

flows('flood wait waits retryAfter, never error', async () => {
  const fakes = new Fakes().script('connect', err('TG_API_429', { retryAfter: 9 }), ME);
  const bot = await startBot(fakes);
  assert.is(bot.ctx().error?.retryAt, T0 + 9000);
  await bot.step(undefined, 8999);
  assert.is(fakes.count('connect'), 1);
  await bot.step(undefined, 1);
  assert.is(bot.status(), 'active');
  assert.equal(bot.statuses, ['connecting', 'active']);
  bot.actor.stop();
});

flows('watcher reports REVOKED (getUpdates 401) → error TG_BOT_TOKEN_INVALID', async () => {
  const fakes = new Fakes().byDefault('connect', ME);
  const bot = await startBot(fakes);
  fakes.push({ type: 'REVOKED' });
  await bot.step();
  assert.is(bot.status(), 'error');
  assert.is(bot.ctx().error?.code, 'TG_BOT_TOKEN_INVALID');
  assert.is(fakes.liveWatchers, 0);
  await bot.step(undefined, 3_600_000);
  assert.is(fakes.count('connect'), 1);
  bot.actor.stop();
});

flows('drop → backoff → active; UPDATE is emitted', async () => {
  const fakes = new Fakes().byDefault('connect', ME);
  const bot = await startBot(fakes);
  const seen: unknown[] = [];
  bot.actor.on('update', (e) => seen.push(e.update));
  fakes.push({ type: 'UPDATE', update: { update_id: 1 } });
  assert.equal(seen, [{ update_id: 1 }]);
  fakes.push({ type: 'CONNECTION_DROPPED' });
  await bot.step();
  assert.equal(bot.actor.getSnapshot().value, { connecting: 'wait' });
  await bot.step(undefined, 1000);
  assert.is(bot.status(), 'active');
  assert.equal(bot.statuses, ['connecting', 'active', 'connecting', 'active']);
  bot.actor.stop();
});

flows('PLATFORM_ERROR: token invalid → error; flood → stays active; network → reconnect', async () => {
  const fakes = new Fakes().byDefault('connect', ME);
  const bot = await startBot(fakes);
  await bot.step({ type: 'PLATFORM_ERROR', error: { code: 'TG_API_429', category: 'rate-limited-until', retryAfter: 5, message: 'w' } });
  assert.is(bot.status(), 'active');
  await bot.step({ type: 'PLATFORM_ERROR', error: { code: 'TG_UNAVAILABLE', category: 'retry', message: 'n' } });
  assert.is(bot.status(), 'connecting');
  await bot.step(undefined, 1000);
  assert.is(bot.status(), 'active');
  await bot.step({ type: 'PLATFORM_ERROR', error: { code: 'TG_BOT_TOKEN_INVALID', category: 'fatal', message: 't' } });
  assert.is(bot.status(), 'error');
  bot.actor.stop();
});

flows('BREAKER_OPEN → error CIRCUIT_OPEN → RECONNECT; MEMORY_EXCEEDED; STOP and LOGOUT stop', async () => {
  const fakes = new Fakes().byDefault('connect', ME).byDefault('logOut', ok(undefined));
  const bot = await startBot(fakes);
  await bot.step({ type: 'BREAKER_OPEN', retryAt: T0 + 30_000 });
  assert.equal(bot.ctx().error, { code: 'CIRCUIT_OPEN', message: 'too many failures; retrying later', retryAt: T0 + 30_000 });
  await bot.step({ type: 'RECONNECT' });
  assert.is(bot.status(), 'active');
  await bot.step({ type: 'MEMORY_EXCEEDED' });
  assert.is(bot.ctx().error?.code, 'MEMORY_BUDGET_EXCEEDED');
  await bot.step({ type: 'LOGOUT' });
  assert.is(bot.status(), 'stopped');
  assert.not.ok(bot.actor.getSnapshot().can({ type: 'MEMORY_EXCEEDED' }));
  await bot.step({ type: 'RECONNECT' });
  assert.is(bot.status(), 'active');
  await bot.step({ type: 'STOP' });
  assert.is(bot.status(), 'stopped');
  assert.is(fakes.liveWatchers, 0);
  bot.actor.stop();
});

flows('STOP with a reason (a withdrawn consent) → stopped showing it, kept through a restore; RECONNECT clears it; plain STOP shows none', async () => {
  const fakes = new Fakes().byDefault('connect', ME);
  const bot = await startBot(fakes);
  const reason = { code: 'CONSENT_WITHDRAWN', message: 'withdrawn' };
  await bot.step({ type: 'STOP', error: reason });
  assert.is(bot.status(), 'stopped');
  assert.equal([bot.ctx().error, bot.ctx().retryAt], [reason, null]);
  assert.is(fakes.liveWatchers, 0);
  const restored = await startBot(fakes, { snapshot: store(bot.actor) });
  await restored.step({ type: 'RESUME' });
  assert.equal([restored.status(), restored.ctx().error], ['stopped', reason]);
  await restored.step({ type: 'RECONNECT' });
  assert.equal([restored.status(), restored.ctx().error], ['active', null]);
  await restored.step({ type: 'STOP' });
  assert.equal([restored.status(), restored.ctx().error], ['stopped', null]);
  restored.actor.stop();
});

const restore = suite('bot: restore (stored snapshot → JSON → RESUME)');

restore('connect in flight → RESUME connects again → active', async () => {
  const before = await startBot(new Fakes().script('connect', HANG));
  const fakes = new Fakes().script('connect', ME);
  const bot = await startBot(fakes, { snapshot: store(before.actor) });
  assert.is(fakes.count('connect'), 0, 'restoring alone runs no I/O');
  await bot.step({ type: 'RESUME' });
  assert.is(bot.status(), 'active');
  bot.actor.stop();
});

restore('mid-backoff → RESUME fires at retryAt', async () => {
  const before = await startBot(new Fakes().script('connect', err('TG_API_429', { retryAfter: 20 })));
  const fakes = new Fakes().script('connect', ME);
  const bot = await startBot(fakes, { snapshot: store(before.actor), clock: testClock(1, T0 + 5000) });
  await bot.step({ type: 'RESUME' });
  await bot.step(undefined, 14_999);
  assert.is(fakes.count('connect'), 0);
  await bot.step(undefined, 1);
  assert.is(bot.status(), 'active');
  bot.actor.stop();
});

restore('active → RESUME connects again and restarts the watcher', async () => {
  const before = await startBot(new Fakes().script('connect', ME));
  const fakes = new Fakes().script('connect', ME);
  const bot = await startBot(fakes, { snapshot: store(before.actor) });
  assert.is(fakes.liveWatchers, 0);
  await bot.step({ type: 'RESUME' });
  assert.is(bot.status(), 'active');
  assert.is(fakes.liveWatchers, 1);
  bot.actor.stop();
});

restore('error and stopped stay put after RESUME', async () => {
  for (const setup of [
    new Fakes().script('connect', err('TG_BOT_TOKEN_INVALID')),
    new Fakes().script('connect', ME),
  ]) {
    const before = await startBot(setup);
    if (before.status() === 'active') await before.step({ type: 'STOP' });
    const status = before.status();
    const fakes = new Fakes();
    const bot = await startBot(fakes, { snapshot: store(before.actor) });
    await bot.step({ type: 'RESUME' }, 3_600_000);
    assert.is(bot.status(), status);
    assert.equal(Object.keys(fakes.calls), []);
    bot.actor.stop();
  }
});

restore('a version-1 snapshot (before the shared lifecycle) is migrated and resumes where it was', async () => {
  const v1 = (value: unknown) => ({
    status: 'active', value, historyValue: {}, children: {},
    context: { connectionId: 'b1', backoff: { baseMs: 1000, capMs: 60_000 }, attempt: 0, retryAt: null, error: null, profile: BOT, lastActiveAt: T0 },
  });
  for (const [value, expected] of [
    ['active', 'active'], ['error', 'error'], ['stopped', 'stopped'], [{ connecting: 'verify' }, 'active'], [{ connecting: 'wait' }, 'active'],
  ] as const) {
    const migrated = migrateBotSnapshot(v1(value));
    assert.ok(migrated, JSON.stringify(value));
    const fakes = new Fakes().byDefault('connect', ME);
    const bot = await startBot(fakes, { snapshot: migrated });
    await bot.step({ type: 'RESUME' }, 60_000);
    assert.is(bot.status(), expected, JSON.stringify(value));
    assert.equal(bot.ctx().profile, BOT);
    bot.actor.stop();
  }
  assert.is(migrateBotSnapshot({ ...v1({ connecting: 'elsewhere' }) }), undefined, 'an unknown value is not guessed at');
});

const graph = suite('bot: graph');

graph('every status reachable, every declared transition taken, nothing crashes', () => {
  const errors = [
    { code: 'TG_API_429', category: 'rate-limited-until', retryAfter: 5 }, { code: 'TG_UNAVAILABLE', category: 'retry' },
    { code: 'TG_BOT_TOKEN_INVALID', category: 'fatal' }, new Error('x'),
  ];
  const events: EventObject[] = [
    ...['REVOKED', 'CONNECTION_DROPPED', 'LOGOUT', 'STOP', 'RECONNECT', 'MEMORY_EXCEEDED', 'RESUME'].map((type) => ({ type })),
    { type: 'UPDATE', update: {} } as EventObject,
    { type: 'BREAKER_OPEN', retryAt: 1 } as EventObject,
    ...errors.map((error) => ({ type: 'PLATFORM_ERROR', error }) as EventObject),
    { type: 'xstate.done.actor.connect', output: { authorized: true, profile: BOT } } as EventObject,
    { type: 'xstate.done.actor.connect', output: { authorized: false } } as EventObject,
    { type: 'xstate.done.actor.logOut' } as EventObject,
    ...['connect', 'watch', 'logOut'].flatMap((id) => errors.map((error) => ({ type: `xstate.error.actor.${id}`, error }) as EventObject)),
    ...afterEvents(botMachine),
  ];
  const cov = explore(botMachine, {
    inputs: [{ connectionId: 'b' }],
    events,
    serialize: ({ value, context }: { value: unknown; context: { attempt: number } }) => JSON.stringify([value, Math.min(context.attempt, 2)]),
  });
  assert.equal([...cov.reached].sort(), ['active', 'connecting', 'error', 'stopped']);
  assert.equal(cov.crashed, []);
  assert.equal(cov.missing, [], `transitions never taken:\n${cov.missing.join('\n')}`);
});

flows.run();
restore.run();
graph.run();
