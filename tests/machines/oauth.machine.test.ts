// OAuth machine (YouTube, TikTok): flows with scripted fake slots under SimulatedClock, and restore.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, type Snapshot } from 'xstate';
import type { ConnectOutput, StepInput } from '../../machines/connection.ts';
import { oauthMachine } from '../../machines/oauth.machine.ts';
import { topLevelState, toStoredSnapshot } from '../../machines/persistence.ts';
import { Fakes, flush, testClock } from './harness.ts';

const errors = {
  dropped: { code: 'PLATFORM_UNAVAILABLE', message: 'no answer', category: 'retry' as const },
  revoked: { code: 'PLATFORM_AUTH_REVOKED', message: 'revoked', category: 'reauthorize' as const },
  denied: { code: 'PLATFORM_AUTH_DENIED', message: 'declined' },
};
const CHANNEL = { platformUserId: 'UC1', displayName: 'Chan' };

async function start(fakes: Fakes, opts: { snapshot?: unknown } = {}) {
  const clock = testClock();
  const machine = oauthMachine(errors).provide({
    actors: { connect: fakes.promise<ConnectOutput, StepInput>('connect'), logOut: fakes.promise<void, StepInput>('logOut'), watch: fakes.watch<any, StepInput>() },
  });
  const actor = createActor(machine, {
    input: { connectionId: 'c1', login: 'oauth', authorizeUrl: 'https://accounts.example/auth?state=1' }, clock,
    ...(opts.snapshot ? { snapshot: opts.snapshot as Snapshot<unknown> } : {}),
  });
  actor.start();
  await flush();
  const send = async (e: { type: string; [k: string]: unknown }) => { actor.send(e); await flush(); };
  return { actor, send, status: () => topLevelState(actor.getSnapshot()), ctx: () => actor.getSnapshot().context };
}

test('no tokens yet → awaiting-authorization with the URL; the callback (RECONNECT) → active without it', async () => {
  const fakes = new Fakes().script('connect', { ok: { authorized: false } }, { ok: { authorized: true, profile: CHANNEL } });
  const m = await start(fakes);
  assert.is(m.status(), 'awaiting-authorization');
  assert.is(m.ctx().authorizeUrl, 'https://accounts.example/auth?state=1');
  await m.send({ type: 'RECONNECT' });
  assert.is(m.status(), 'active');
  assert.is(m.ctx().authorizeUrl, null);
  assert.equal(m.ctx().profile, CHANNEL);
});

test('DENIED → error PLATFORM_AUTH_DENIED; AUTHORIZE → awaiting-authorization with the new URL', async () => {
  const m = await start(new Fakes().byDefault('connect', { ok: { authorized: false } }));
  await m.send({ type: 'DENIED' });
  assert.is(m.status(), 'error');
  assert.is(m.ctx().error?.code, 'PLATFORM_AUTH_DENIED');
  await m.send({ type: 'AUTHORIZE', url: 'https://accounts.example/auth?state=2' });
  assert.is(m.status(), 'awaiting-authorization');
  assert.is(m.ctx().authorizeUrl, 'https://accounts.example/auth?state=2');
  assert.is(m.ctx().error, null);
});

test('revoked while active (PLATFORM_ERROR reauthorize) → error; AUTHORIZE leaves it; AUTHORIZE is refused while active', async () => {
  const m = await start(new Fakes().byDefault('connect', { ok: { authorized: true, profile: CHANNEL } }));
  assert.is(m.status(), 'active');
  assert.not.ok(m.actor.getSnapshot().can({ type: 'AUTHORIZE', url: 'x' }));
  await m.send({ type: 'PLATFORM_ERROR', error: { code: 'PLATFORM_AUTH_REVOKED', message: 'revoked', category: 'reauthorize' } });
  assert.is(m.status(), 'error');
  assert.is(m.ctx().error?.code, 'PLATFORM_AUTH_REVOKED');
  assert.ok(m.actor.getSnapshot().can({ type: 'AUTHORIZE', url: 'x' }));
});

test('restore: awaiting-authorization stays (RESUME), with its URL', async () => {
  const m = await start(new Fakes().byDefault('connect', { ok: { authorized: false } }));
  const stored = JSON.parse(JSON.stringify(toStoredSnapshot(m.actor.getPersistedSnapshot())));
  m.actor.stop();
  const fakes = new Fakes().byDefault('connect', { ok: { authorized: false } });
  const again = await start(fakes, { snapshot: stored });
  await again.send({ type: 'RESUME' });
  assert.is(again.status(), 'awaiting-authorization');
  assert.is(again.ctx().authorizeUrl, 'https://accounts.example/auth?state=1');
  assert.is(fakes.count('connect'), 0);
});

test.run();
