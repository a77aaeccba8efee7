// Account machine flows with scripted fake slots and a simulated clock (no I/O, no real sleeps).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { statusOf } from '../../machines/account.machine.ts';
import { PASSWORD, PROFILE, advance, send, startAccount } from './account-fixture.ts';
import { Fakes, HANG, T0, err, testClock } from './harness.ts';

const ok = (value: unknown) => ({ ok: value });
const phoneFakes = () =>
  new Fakes().script('connect', ok({ authorized: false })).script('sendCode', ok({ codeType: 'app' }));

const login = suite('account: login');

login('phone login: connect → sendCode → awaiting-code → CODE → signIn → active', async () => {
  const run = await startAccount({}, { fakes: phoneFakes().script('signIn', ok({ result: 'ok', profile: PROFILE })) });
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(run.ctx().codeType, 'app');
  const snap = run.actor.getSnapshot();
  assert.ok(snap.can({ type: 'CODE', code: '1' }), 'accepts a code');
  assert.not.ok(snap.can({ type: 'PASSWORD' }), 'a password now is INVALID_STATE');

  await send(run, { type: 'CODE', code: '12345' });
  assert.is(run.status(), 'active');
  assert.equal(run.fakes.calls.signIn, [{ connectionId: run.ctx().connectionId, code: '12345' }]);
  assert.equal(run.ctx().profile, PROFILE);
  assert.is(run.ctx().login, 'session', 'later connects are reconnects');
  assert.is(run.ctx().codeType, null, 'login data is gone once active');
  assert.is(run.ctx().pendingCode, null);
  assert.is(run.ctx().lastActiveAt, T0);
  assert.is(run.fakes.liveWatchers, 1, 'the watcher runs while active');
  assert.equal(run.statuses, ['connecting', 'awaiting-code', 'active']);
  run.actor.stop();
});

login('2FA: signIn asks for the password, PASSWORD → checkPassword → active', async () => {
  const run = await startAccount({}, { fakes: phoneFakes().script('signIn', ok({ result: 'password', hint: 'pet name' })) });
  await send(run, { type: 'CODE', code: '12345' });
  assert.equal(run.value(), { 'awaiting-2fa': 'idle' });
  assert.is(run.ctx().passwordHint, 'pet name');
  assert.is(run.ctx().pendingCode, null, 'the used code is not kept');
  run.vault.set(run.ctx().connectionId, PASSWORD);
  await send(run, { type: 'PASSWORD' });
  assert.is(run.status(), 'active');
  assert.equal(run.fakes.calls.checkPassword, [{ connectionId: run.ctx().connectionId }]);
  assert.is(run.ctx().passwordHint, null);
  run.actor.stop();
});

login('wrong code keeps awaiting-code with TG_CODE_INVALID, a right one then logs in', async () => {
  const fakes = phoneFakes().script('signIn', err('TG_CODE_INVALID'), ok({ result: 'ok', profile: PROFILE }));
  const run = await startAccount({}, { fakes });
  await send(run, { type: 'CODE', code: '00000' });
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(run.ctx().error?.code, 'TG_CODE_INVALID');
  assert.is(run.ctx().error?.retryAt, undefined, 'not a retry: the user must act');
  assert.ok(run.actor.getSnapshot().can({ type: 'CODE', code: '1' }));
  await send(run, { type: 'CODE', code: '12345' });
  assert.is(run.status(), 'active');
  assert.is(run.ctx().error, null);
  run.actor.stop();
});

login('expired code keeps awaiting-code with TG_CODE_EXPIRED; RECONNECT sends a new code', async () => {
  const fakes = phoneFakes()
    .script('signIn', err('TG_CODE_EXPIRED'))
    .script('connect', ok({ authorized: false }))
    .script('sendCode', ok({ codeType: 'sms' }));
  const run = await startAccount({}, { fakes });
  await send(run, { type: 'CODE', code: '12345' });
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(run.ctx().error?.code, 'TG_CODE_EXPIRED');
  await send(run, { type: 'RECONNECT' });
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(fakes.count('sendCode'), 2);
  assert.is(run.ctx().codeType, 'sms');
  assert.is(run.ctx().error, null);
  run.actor.stop();
});

login('wrong password keeps awaiting-2fa with TG_PASSWORD_INVALID', async () => {
  const run = await startAccount({}, { fakes: phoneFakes().script('signIn', ok({ result: 'password' })) });
  await send(run, { type: 'CODE', code: '12345' });
  run.vault.set(run.ctx().connectionId, 'wrong');
  await send(run, { type: 'PASSWORD' });
  assert.equal(run.value(), { 'awaiting-2fa': 'idle' });
  assert.is(run.ctx().error?.code, 'TG_PASSWORD_INVALID');
  assert.ok(run.actor.getSnapshot().can({ type: 'PASSWORD' }));
  run.vault.set(run.ctx().connectionId, PASSWORD);
  await send(run, { type: 'PASSWORD' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

login('QR: token in context, refreshed 5 s before expiry, scan → export again → active', async () => {
  const clock = testClock();
  const fakes = new Fakes()
    .script('connect', ok({ authorized: false }))
    .script('exportQr',
      ok({ result: 'token', url: 'tg://login?token=AAA', expiresAt: T0 + 30_000 }),
      ok({ result: 'token', url: 'tg://login?token=BBB', expiresAt: T0 + 55_000 }),
      ok({ result: 'ok', profile: PROFILE }));
  const run = await startAccount({ login: 'qr' }, { fakes, clock });
  assert.equal(run.value(), { 'awaiting-qr': 'showing' });
  assert.equal(run.ctx().qr, { url: 'tg://login?token=AAA', expiresAt: T0 + 30_000 });
  assert.is(fakes.liveWatchers, 1, 'the watcher listens for the scan');
  await advance(clock, 24_999);
  assert.is(fakes.count('exportQr'), 1, 'no refresh before expiresAt - 5 s');
  await advance(clock, 1);
  assert.is(fakes.count('exportQr'), 2, 'refreshed at expiresAt - 5 s');
  assert.equal(run.ctx().qr, { url: 'tg://login?token=BBB', expiresAt: T0 + 55_000 });
  assert.is(fakes.watchStarts, 1, 'a refresh does not restart the watcher');
  fakes.push({ type: 'QR_SCANNED' });
  await advance(clock, 0);
  assert.is(run.status(), 'active');
  assert.is(fakes.count('exportQr'), 3);
  assert.is(run.ctx().qr, null);
  assert.equal(run.statuses, ['connecting', 'awaiting-qr', 'active']);
  run.actor.stop();
});

login('QR with 2FA: the export after the scan asks for the password', async () => {
  const fakes = new Fakes()
    .script('connect', ok({ authorized: false }))
    .script('exportQr', ok({ result: 'token', url: 'tg://login?token=AAA', expiresAt: T0 + 30_000 }), ok({ result: 'password', hint: 'h' }));
  const run = await startAccount({ login: 'qr' }, { fakes });
  fakes.push({ type: 'QR_SCANNED' });
  await advance(run.clock, 0);
  assert.equal(run.value(), { 'awaiting-2fa': 'idle' });
  assert.is(run.ctx().passwordHint, 'h');
  assert.is(fakes.liveWatchers, 0, 'the QR watcher stopped');
  run.vault.set(run.ctx().connectionId, PASSWORD);
  await send(run, { type: 'PASSWORD' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

login('reconnect from a saved session: authorised → active, no login steps', async () => {
  const fakes = new Fakes().script('connect', ok({ authorized: true, profile: PROFILE }));
  const run = await startAccount({ login: 'session' }, { fakes });
  assert.is(run.status(), 'active');
  assert.equal(run.ctx().profile, PROFILE);
  assert.is(fakes.count('sendCode') + fakes.count('signIn') + fakes.count('exportQr'), 0);
  run.actor.stop();
});

login('a saved session that is not authorised any more → error TG_SESSION_EXPIRED, no code sent', async () => {
  const fakes = new Fakes().script('connect', ok({ authorized: false }));
  const run = await startAccount({ login: 'session' }, { fakes });
  assert.is(run.status(), 'error');
  assert.is(run.ctx().error?.code, 'TG_SESSION_EXPIRED');
  assert.is(fakes.count('sendCode'), 0);
  run.actor.stop();
});

const failures = suite('account: failures');

failures('drop while active → connecting with backoff → active again', async () => {
  const fakes = new Fakes().script('connect', ok({ authorized: true, profile: PROFILE }), ok({ authorized: true }));
  const run = await startAccount({ login: 'session' }, { fakes });
  fakes.push({ type: 'CONNECTION_DROPPED' });
  await advance(run.clock, 0);
  assert.equal(run.value(), { connecting: 'wait' });
  assert.equal(run.ctx().error, { code: 'TG_UNAVAILABLE', message: 'connection to Telegram dropped', retryAt: T0 + 1000 });
  assert.is(fakes.liveWatchers, 0);
  await advance(run.clock, 999);
  assert.is(fakes.count('connect'), 1, 'nothing before retryAt');
  await advance(run.clock, 1);
  assert.is(run.status(), 'active');
  assert.is(fakes.count('connect'), 2);
  assert.is(run.ctx().error, null);
  assert.is(run.ctx().attempt, 0);
  assert.equal(run.ctx().profile, PROFILE, 'profile kept when connect does not repeat it');
  assert.equal(run.statuses, ['connecting', 'active', 'connecting', 'active']);
  run.actor.stop();
});

failures('flood wait on sendCode waits retryAfter and retries, never entering error', async () => {
  const fakes = new Fakes()
    .byDefault('connect', ok({ authorized: false }))
    .script('sendCode', err('TG_API_429', { retryAfter: 17 }), ok({ codeType: 'app' }));
  const run = await startAccount({}, { fakes });
  assert.equal(run.value(), { connecting: 'wait' });
  assert.equal(run.ctx().error, { code: 'TG_API_429', message: 'TG_API_429 from the fake', retryAt: T0 + 17_000 });
  assert.is(run.ctx().attempt, 0, 'a flood wait is not a failed attempt');
  await advance(run.clock, 16_999);
  assert.is(fakes.count('sendCode'), 1);
  await advance(run.clock, 1);
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(fakes.count('sendCode'), 2);
  assert.not.ok(run.statuses.includes('error'));
  run.actor.stop();
});

failures('flood wait on signIn retries the same code after retryAfter', async () => {
  const fakes = phoneFakes().script('signIn', err('TG_API_429', { retryAfter: 3 }), ok({ result: 'ok', profile: PROFILE }));
  const run = await startAccount({}, { fakes });
  await send(run, { type: 'CODE', code: '12345' });
  assert.equal(run.value(), { 'awaiting-code': 'wait' });
  assert.is(run.ctx().error?.retryAt, T0 + 3000);
  await advance(run.clock, 3000);
  assert.is(run.status(), 'active');
  assert.equal(fakes.calls.signIn?.map((i) => (i as { code: string }).code), ['12345', '12345']);
  run.actor.stop();
});

failures('a flood wait reported by a send keeps the account active', async () => {
  const run = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', ok({ authorized: true })) });
  await send(run, { type: 'PLATFORM_ERROR', error: { code: 'TG_API_429', category: 'rate-limited-until', retryAfter: 30, message: 'wait' } });
  await send(run, { type: 'PLATFORM_ERROR', error: { code: 'TG_CHAT_WRITE_FORBIDDEN', category: 'rejected', message: 'no rights' } });
  assert.is(run.status(), 'active');
  assert.is(run.ctx().error, null);
  assert.is(run.fakes.watchStarts, 1, 'not even re-entered');
  run.actor.stop();
});

failures('a retryable send failure reconnects with backoff', async () => {
  const fakes = new Fakes().byDefault('connect', ok({ authorized: true }));
  const run = await startAccount({ login: 'session' }, { fakes });
  await send(run, { type: 'PLATFORM_ERROR', error: { code: 'TG_UNAVAILABLE', category: 'retry', message: 'socket closed' } });
  assert.equal(run.value(), { connecting: 'wait' });
  await advance(run.clock, 1000);
  assert.is(run.status(), 'active');
  run.actor.stop();
});

failures('revoked session → error and no further connect attempts', async () => {
  const fakes = new Fakes().byDefault('connect', ok({ authorized: true }));
  const run = await startAccount({ login: 'session' }, { fakes });
  fakes.push({ type: 'REVOKED' });
  await advance(run.clock, 0);
  assert.is(run.status(), 'error');
  assert.is(run.ctx().error?.code, 'TG_SESSION_EXPIRED');
  await advance(run.clock, 3_600_000);
  assert.is(fakes.count('connect'), 1);
  assert.is(fakes.liveWatchers, 0);
  run.actor.stop();
});

failures('TG_SESSION_EXPIRED from connect or from a send is terminal', async () => {
  const fakes = new Fakes().script('connect', err('TG_SESSION_EXPIRED'));
  const run = await startAccount({ login: 'session' }, { fakes });
  assert.is(run.status(), 'error');
  await advance(run.clock, 3_600_000);
  assert.is(fakes.count('connect'), 1, 'terminal: category reauthorize');

  const f2 = new Fakes().script('connect', ok({ authorized: true }));
  const run2 = await startAccount({ login: 'session' }, { fakes: f2 });
  await send(run2, { type: 'PLATFORM_ERROR', error: { code: 'TG_SESSION_EXPIRED', category: 'reauthorize', message: 'AUTH_KEY_UNREGISTERED' } });
  assert.is(run2.status(), 'error');
  run.actor.stop();
  run2.actor.stop();
});

failures('unknown errors are retried and their text never reaches context', async () => {
  const fakes = new Fakes()
    .script('connect', { err: new Error('dial failed, session=1BQANOTASECRET') }, ok({ authorized: true }));
  const run = await startAccount({ login: 'session' }, { fakes });
  assert.equal(run.value(), { connecting: 'wait' });
  assert.is(run.ctx().error?.code, 'PLATFORM_UNAVAILABLE', 'the machine names no platform: a core code');
  assert.not.match(JSON.stringify(run.actor.getPersistedSnapshot()), 'NOTASECRET');
  await advance(run.clock, 1000);
  assert.is(run.status(), 'active');
  run.actor.stop();
});

failures('UPDATE from the watcher is emitted, context untouched', async () => {
  const run = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', ok({ authorized: true })) });
  const seen: unknown[] = [];
  run.actor.on('update', (e) => seen.push(e));
  const before = JSON.stringify(run.ctx());
  run.fakes.push({ type: 'UPDATE', update: { text: 'hi' } });
  assert.equal(seen, [{ type: 'update', connectionId: run.ctx().connectionId, update: { text: 'hi' } }]);
  assert.is(JSON.stringify(run.ctx()), before);
  run.actor.stop();
});

const control = suite('account: supervisor events');

control('LOGOUT → logOut slot → stopped, and nothing restarts it', async () => {
  const fakes = new Fakes().script('connect', ok({ authorized: true })).script('logOut', ok(undefined));
  const run = await startAccount({ login: 'session' }, { fakes });
  await send(run, { type: 'LOGOUT' });
  assert.equal(run.value(), { stopped: 'loggedOut' });
  assert.is(fakes.count('logOut'), 1);
  assert.is(fakes.liveWatchers, 0);
  const snap = run.actor.getSnapshot();
  for (const type of ['RECONNECT', 'LOGOUT', 'STOP', 'MEMORY_EXCEEDED'] as const) assert.not.ok(snap.can({ type }), type);
  assert.not.ok(snap.can({ type: 'BREAKER_OPEN', retryAt: T0 }));
  run.actor.stop();
});

control('LOGOUT on a flaky network tries 3 times, then stops with the error kept', async () => {
  const fakes = new Fakes().script('connect', ok({ authorized: true })).byDefault('logOut', err('TG_UNAVAILABLE'));
  const run = await startAccount({ login: 'session' }, { fakes });
  await send(run, { type: 'LOGOUT' });
  assert.equal(run.value(), { stopped: { loggingOut: 'wait' } });
  assert.is(run.status(), 'stopped');
  await advance(run.clock, 1000);
  await advance(run.clock, 2000);
  assert.equal(run.value(), { stopped: 'loggedOut' });
  assert.is(fakes.count('logOut'), 3);
  assert.equal(run.ctx().error, { code: 'TG_UNAVAILABLE', message: 'TG_UNAVAILABLE from the fake' });
  assert.is(run.ctx().retryAt, null);
  run.actor.stop();
});

control('STOP → stopped without logging out; RECONNECT starts it again', async () => {
  const fakes = new Fakes().byDefault('connect', ok({ authorized: true }));
  const run = await startAccount({ login: 'session' }, { fakes });
  await send(run, { type: 'STOP' });
  assert.equal(run.value(), { stopped: 'idle' });
  assert.is(fakes.count('logOut'), 0);
  await send(run, { type: 'MEMORY_EXCEEDED' });
  assert.equal(run.value(), { stopped: 'idle' }, 'a stopped connection does not fall into error');
  await send(run, { type: 'RECONNECT' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

control('BREAKER_OPEN while backing off → error CIRCUIT_OPEN naming the last failure; RECONNECT → connecting → active', async () => {
  const fakes = new Fakes().script('connect', err('TG_UNAVAILABLE'), err('TG_UNAVAILABLE')).byDefault('connect', ok({ authorized: true }));
  const run = await startAccount({ login: 'session' }, { fakes });
  await advance(run.clock, 1000);
  assert.equal(run.value(), { connecting: 'wait' });
  assert.is(run.ctx().attempt, 2);
  await send(run, { type: 'BREAKER_OPEN', retryAt: T0 + 60_000 });
  assert.is(run.status(), 'error');
  assert.equal(run.ctx().error, { code: 'CIRCUIT_OPEN', message: 'too many failures (last: TG_UNAVAILABLE: TG_UNAVAILABLE from the fake); retrying later', retryAt: T0 + 60_000 });
  await advance(run.clock, 120_000);
  assert.is(fakes.count('connect'), 2, 'the pending retry was cancelled');
  await send(run, { type: 'RECONNECT' });
  assert.is(run.status(), 'active');
  assert.is(run.ctx().attempt, 0);
  assert.equal(run.statuses, ['connecting', 'error', 'connecting', 'active']);
  run.actor.stop();
});

control('MEMORY_EXCEEDED → error MEMORY_BUDGET_EXCEEDED, watcher stopped', async () => {
  const run = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', ok({ authorized: true })) });
  await send(run, { type: 'MEMORY_EXCEEDED' });
  assert.is(run.status(), 'error');
  assert.is(run.ctx().error?.code, 'MEMORY_BUDGET_EXCEEDED');
  assert.is(run.fakes.liveWatchers, 0);
  run.actor.stop();
});

control("'busy' tag while a step is in flight, so the API knows when to answer", async () => {
  const fakes = new Fakes()
    .byDefault('connect', ok({ authorized: false }))
    .byDefault('sendCode', ok({ codeType: 'app' }))
    .script('signIn', HANG);
  const run = await startAccount({}, { fakes });
  assert.not.ok(run.actor.getSnapshot().hasTag('busy'));
  await send(run, { type: 'CODE', code: '1' });
  assert.ok(run.actor.getSnapshot().hasTag('busy'));
  assert.not.ok(run.actor.getSnapshot().can({ type: 'CODE', code: '2' }), 'a second code while one is checked: 409');
  await send(run, { type: 'RECONNECT' });
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.not.ok(run.actor.getSnapshot().hasTag('busy'));
  run.actor.stop();
});

control('statusOf reads live and stored snapshots alike', async () => {
  const run = await startAccount({}, { fakes: phoneFakes() });
  assert.is(statusOf(run.actor.getSnapshot()), 'awaiting-code');
  assert.is(statusOf(JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot()))), 'awaiting-code');
  assert.is(statusOf({ value: 'error' }), 'error');
  run.actor.stop();
});

control('unprovided slots fail loudly (into backoff), they never pretend to work', async () => {
  const { createActor } = await import('xstate');
  const { machine } = await import('./account-fixture.ts');
  const actor = createActor(machine, { input: { connectionId: 'x', login: 'phone' }, clock: testClock() }).start();
  await advance(testClock(), 0);
  assert.equal(actor.getSnapshot().value, { connecting: 'wait' });
  actor.stop();
});

login.run();
failures.run();
control.run();
