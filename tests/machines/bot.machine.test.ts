// Bot machine: flows with scripted fake slots under SimulatedClock, graph coverage, restore.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, type EventObject, type Snapshot } from 'xstate';
import {
  botMachine, statusOf, type BotContext, type BotEvent, type BotInput, type BotStepInput, type VerifyOutput,
} from '../../machines/bot.machine.ts';
import { toStoredSnapshot } from '../../machines/persistence.ts';
import { afterEvents, explore } from './graph-coverage.ts';
import { Fakes, HANG, T0, err, flush, testClock, type TestClock } from './harness.ts';

const BOT = { platformUserId: '123456', displayName: 'Shop Bot', username: 'shop_bot' };
const ok = (value: unknown) => ({ ok: value });

const startBot = async (fakes: Fakes, opts: { clock?: TestClock; snapshot?: unknown; input?: Partial<BotInput> } = {}) => {
  const clock = opts.clock ?? testClock();
  const machine = botMachine.provide({
    actors: { verify: fakes.promise<VerifyOutput, BotStepInput>('verify'), watch: fakes.watch<BotEvent, BotStepInput>() },
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

flows('verify (getMe) → active with the profile, watcher running', async () => {
  const fakes = new Fakes().script('verify', ok({ profile: BOT }));
  const bot = await startBot(fakes);
  assert.is(bot.status(), 'active');
  assert.equal(bot.ctx().profile, BOT);
  assert.equal(fakes.calls.verify, [{ connectionId: bot.ctx().connectionId }], 'no token in the input');
  assert.is(fakes.liveWatchers, 1);
  assert.is(bot.ctx().lastActiveAt, T0);
  bot.actor.stop();
});

flows('invalid token → error TG_BOT_TOKEN_INVALID, no retries', async () => {
  const fakes = new Fakes().byDefault('verify', err('TG_BOT_TOKEN_INVALID', { retryable: false }));
  const bot = await startBot(fakes);
  assert.is(bot.status(), 'error');
  assert.is(bot.ctx().error?.code, 'TG_BOT_TOKEN_INVALID');
  await bot.step(undefined, 3_600_000);
  assert.is(fakes.count('verify'), 1);
  bot.actor.stop();
});

flows('transient failures back off 1 s, 2 s, then active', async () => {
  const fakes = new Fakes().script('verify', err('TG_UNAVAILABLE'), err('TG_UNAVAILABLE'), ok({ profile: BOT }));
  const bot = await startBot(fakes);
  assert.equal(bot.actor.getSnapshot().value, { connecting: 'wait' });
  assert.is(bot.ctx().error?.retryAt, T0 + 1000);
  await bot.step(undefined, 1000);
  assert.is(bot.ctx().error?.retryAt, T0 + 3000);
  await bot.step(undefined, 1999);
  assert.is(fakes.count('verify'), 2);
  await bot.step(undefined, 1);
  assert.is(bot.status(), 'active');
  assert.is(bot.ctx().attempt, 0);
  bot.actor.stop();
});

flows('flood wait waits retryAfter, never error', async () => {
  const fakes = new Fakes().script('verify', err('TG_API_429', { retryAfter: 9 }), ok({ profile: BOT }));
  const bot = await startBot(fakes);
  assert.is(bot.ctx().error?.retryAt, T0 + 9000);
  await bot.step(undefined, 8999);
  assert.is(fakes.count('verify'), 1);
  await bot.step(undefined, 1);
  assert.is(bot.status(), 'active');
  assert.equal(bot.statuses, ['connecting', 'active']);
  bot.actor.stop();
});

flows('watcher reports TOKEN_REVOKED → error TG_BOT_TOKEN_INVALID', async () => {
  const fakes = new Fakes().byDefault('verify', ok({ profile: BOT }));
  const bot = await startBot(fakes);
  fakes.push({ type: 'TOKEN_REVOKED' });
  await bot.step();
  assert.is(bot.status(), 'error');
  assert.is(bot.ctx().error?.code, 'TG_BOT_TOKEN_INVALID');
  assert.is(fakes.liveWatchers, 0);
  await bot.step(undefined, 3_600_000);
  assert.is(fakes.count('verify'), 1);
  bot.actor.stop();
});

flows('drop → backoff → active; UPDATE is emitted', async () => {
  const fakes = new Fakes().byDefault('verify', ok({ profile: BOT }));
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
  const fakes = new Fakes().byDefault('verify', ok({ profile: BOT }));
  const bot = await startBot(fakes);
  await bot.step({ type: 'PLATFORM_ERROR', error: { code: 'TG_API_429', retryAfter: 5, message: 'w' } });
  assert.is(bot.status(), 'active');
  await bot.step({ type: 'PLATFORM_ERROR', error: { code: 'TG_UNAVAILABLE', retryable: true, message: 'n' } });
  assert.is(bot.status(), 'connecting');
  await bot.step(undefined, 1000);
  assert.is(bot.status(), 'active');
  await bot.step({ type: 'PLATFORM_ERROR', error: { code: 'TG_BOT_TOKEN_INVALID', retryable: false, message: 't' } });
  assert.is(bot.status(), 'error');
  bot.actor.stop();
});

flows('BREAKER_OPEN → error CIRCUIT_OPEN → RECONNECT; MEMORY_EXCEEDED; STOP and LOGOUT stop', async () => {
  const fakes = new Fakes().byDefault('verify', ok({ profile: BOT }));
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

const restore = suite('bot: restore (stored snapshot → JSON → RESUME)');

restore('verify in flight → RESUME verifies again → active', async () => {
  const before = await startBot(new Fakes().script('verify', HANG));
  const fakes = new Fakes().script('verify', ok({ profile: BOT }));
  const bot = await startBot(fakes, { snapshot: store(before.actor) });
  assert.is(fakes.count('verify'), 0, 'restoring alone runs no I/O');
  await bot.step({ type: 'RESUME' });
  assert.is(bot.status(), 'active');
  bot.actor.stop();
});

restore('mid-backoff → RESUME fires at retryAt', async () => {
  const before = await startBot(new Fakes().script('verify', err('TG_API_429', { retryAfter: 20 })));
  const fakes = new Fakes().script('verify', ok({ profile: BOT }));
  const bot = await startBot(fakes, { snapshot: store(before.actor), clock: testClock(1, T0 + 5000) });
  await bot.step({ type: 'RESUME' });
  await bot.step(undefined, 14_999);
  assert.is(fakes.count('verify'), 0);
  await bot.step(undefined, 1);
  assert.is(bot.status(), 'active');
  bot.actor.stop();
});

restore('active → RESUME re-verifies and restarts the watcher', async () => {
  const before = await startBot(new Fakes().script('verify', ok({ profile: BOT })));
  const fakes = new Fakes().script('verify', ok({ profile: BOT }));
  const bot = await startBot(fakes, { snapshot: store(before.actor) });
  assert.is(fakes.liveWatchers, 0);
  await bot.step({ type: 'RESUME' });
  assert.is(bot.status(), 'active');
  assert.is(fakes.liveWatchers, 1);
  bot.actor.stop();
});

restore('error and stopped stay put after RESUME', async () => {
  for (const setup of [
    new Fakes().script('verify', err('TG_BOT_TOKEN_INVALID')),
    new Fakes().script('verify', ok({ profile: BOT })),
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

const graph = suite('bot: graph');

graph('every status reachable, every declared transition taken, nothing crashes', () => {
  const errors = [
    { code: 'TG_API_429', retryAfter: 5 }, { code: 'TG_UNAVAILABLE' }, { code: 'TG_BOT_TOKEN_INVALID', retryable: false }, new Error('x'),
  ];
  const events: EventObject[] = [
    ...['TOKEN_REVOKED', 'CONNECTION_DROPPED', 'LOGOUT', 'STOP', 'RECONNECT', 'MEMORY_EXCEEDED', 'RESUME'].map((type) => ({ type })),
    { type: 'UPDATE', update: {} } as EventObject,
    { type: 'BREAKER_OPEN', retryAt: 1 } as EventObject,
    ...errors.map((error) => ({ type: 'PLATFORM_ERROR', error }) as EventObject),
    { type: 'xstate.done.actor.verify', output: { profile: BOT } } as EventObject,
    ...['verify', 'watch'].flatMap((id) => errors.map((error) => ({ type: `xstate.error.actor.${id}`, error }) as EventObject)),
    ...afterEvents(botMachine),
  ];
  const cov = explore(botMachine, {
    inputs: [{ connectionId: 'b' }],
    events,
    serialize: ({ value, context }: { value: unknown; context: BotContext }) => JSON.stringify([value, Math.min(context.attempt, 2)]),
  });
  assert.equal([...cov.reached].sort(), ['active', 'connecting', 'error', 'stopped']);
  assert.equal(cov.crashed, []);
  assert.equal(cov.missing, [], `transitions never taken:\n${cov.missing.join('\n')}`);
});

flows.run();
restore.run();
graph.run();
