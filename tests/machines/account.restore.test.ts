// Account machine persistence: stored snapshot → JSON → restore → RESUME in every state, then
// the flow goes on; plus the no-secrets guarantee. Follows the restore rule in account.machine.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type InspectionEvent } from 'xstate';
import { migrateAccountSnapshot } from '../../machines/account.machine.ts';
import { toStoredSnapshot } from '../../machines/persistence.ts';
import { PASSWORD, PROFILE, advance, send, startAccount, type Run } from './account-fixture.ts';
import { Fakes, HANG, T0, err, flush, testClock } from './harness.ts';

const ok = (value: unknown) => ({ ok: value });
const QR1 = { result: 'token', url: 'tg://login?token=AAA', expiresAt: T0 + 30_000 };
const QR2 = { result: 'token', url: 'tg://login?token=BBB', expiresAt: T0 + 60_000 };

// What the supervisor writes to the jsonb column and reads back.
const store = (run: Run): unknown => {
  const row = JSON.stringify(toStoredSnapshot(run.actor.getPersistedSnapshot()));
  run.actor.stop();
  return JSON.parse(row);
};

// A new process: fresh fakes (fresh client), a clock at `at`, restore, then RESUME.
const restore = async (stored: unknown, fakes: Fakes, at = T0, vault?: Map<string, string>): Promise<Run> => {
  const run = await startAccount({}, { fakes, clock: testClock(1, at), snapshot: stored as never, ...(vault ? { vault } : {}) });
  assert.equal(Object.keys(fakes.calls), [], 'restoring alone runs no I/O');
  await send(run, { type: 'RESUME' });
  return run;
};

const connecting = suite('restore: connecting');

connecting('connect in flight → RESUME connects again → awaiting-code', async () => {
  const before = await startAccount({}, { fakes: new Fakes().script('connect', HANG) });
  assert.equal(before.value(), { connecting: 'connect' });
  const fakes = new Fakes().script('connect', ok({ authorized: false })).script('sendCode', ok({ codeType: 'app' }));
  const run = await restore(store(before), fakes);
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(fakes.count('connect'), 1);
  run.actor.stop();
});

connecting('sendCode in flight → RESUME starts over at connect, one new code', async () => {
  const before = await startAccount({}, { fakes: new Fakes().script('connect', ok({ authorized: false })).script('sendCode', HANG) });
  assert.equal(before.value(), { connecting: 'sendCode' });
  const fakes = new Fakes().script('connect', ok({ authorized: false })).script('sendCode', ok({ codeType: 'sms' }));
  const run = await restore(store(before), fakes);
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(fakes.count('sendCode'), 1);
  assert.is(run.ctx().codeType, 'sms');
  run.actor.stop();
});

connecting('exportQr in flight → RESUME → awaiting-qr', async () => {
  const before = await startAccount({ login: 'qr' }, { fakes: new Fakes().script('connect', ok({ authorized: false })).script('exportQr', HANG) });
  assert.equal(before.value(), { connecting: 'exportQr' });
  const fakes = new Fakes().script('connect', ok({ authorized: false })).script('exportQr', ok(QR1));
  const run = await restore(store(before), fakes);
  assert.equal(run.value(), { 'awaiting-qr': 'showing' });
  assert.is(fakes.liveWatchers, 1);
  run.actor.stop();
});

connecting('mid-backoff: after RESUME the retry fires exactly at retryAt, not at once, not later', async () => {
  const clock = testClock(1);
  const before = await startAccount({ login: 'session' }, { clock, fakes: new Fakes().byDefault('connect', err('TG_UNAVAILABLE')) });
  await advance(clock, 1000); // 1st retry fails too: next wait 2 s → retryAt T0 + 3000
  assert.equal(before.value(), { connecting: 'wait' });
  assert.is(before.ctx().retryAt, T0 + 3000);
  await advance(clock, 500);
  const stored = store(before);

  // The process was down 700 ms: 800 ms remain.
  const fakes = new Fakes().byDefault('connect', ok({ authorized: true }));
  const run = await restore(stored, fakes, T0 + 2200);
  assert.equal(run.value(), { connecting: 'wait' });
  assert.is(run.ctx().error?.retryAt, T0 + 3000, 'the API still shows when the retry happens');
  await advance(run.clock, 0);
  assert.is(fakes.count('connect'), 0, 'not at once');
  await advance(run.clock, 799);
  assert.is(fakes.count('connect'), 0, 'not before retryAt');
  await advance(run.clock, 1);
  assert.is(fakes.count('connect'), 1, 'at retryAt');
  assert.is(run.status(), 'active');
  run.actor.stop();
});

connecting('mid-backoff, down past retryAt: retries at once after RESUME', async () => {
  const before = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', err('TG_UNAVAILABLE')) });
  const fakes = new Fakes().byDefault('connect', ok({ authorized: true }));
  const run = await restore(store(before), fakes, T0 + 60_000);
  await advance(run.clock, 0);
  assert.is(run.status(), 'active');
  assert.is(fakes.count('connect'), 1);
  run.actor.stop();
});

const awaiting = suite('restore: awaiting-*');

const atCode = () => new Fakes().script('connect', ok({ authorized: false })).script('sendCode', ok({ codeType: 'app' }));

awaiting('awaiting-code survives a restart and still accepts CODE (API.md)', async () => {
  const before = await startAccount({}, { fakes: atCode() });
  const fakes = new Fakes().script('signIn', ok({ result: 'ok', profile: PROFILE }));
  const run = await restore(store(before), fakes);
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(run.ctx().codeType, 'app');
  await send(run, { type: 'CODE', code: '12345' });
  assert.is(run.status(), 'active');
  assert.is(fakes.count('connect') + fakes.count('sendCode'), 0, 'no new code was requested');
  run.actor.stop();
});

awaiting('RESEND: the next code type and its facts in context; a refusal leaves idle with the error; RESEND in flight → RESUME → idle', async () => {
  const fakes = atCode()
    .script('resendCode', ok({ codeType: 'sms', nextType: 'call', length: 5, resendAfter: T0 + 60_000 }))
    .script('resendCode', err('TG_CODE_RESEND_UNAVAILABLE', { category: 'rejected' }))
    .script('resendCode', HANG);
  const run = await startAccount({}, { fakes });
  await send(run, { type: 'RESEND' });
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.equal([run.ctx().codeType, run.ctx().codeInfo], ['sms', { nextType: 'call', length: 5, resendAfter: T0 + 60_000 }]);
  await send(run, { type: 'RESEND' });
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(run.ctx().error?.code, 'TG_CODE_RESEND_UNAVAILABLE');
  assert.is(run.ctx().codeType, 'sms', 'the code sent before is still the one in force');
  await send(run, { type: 'RESEND' });
  assert.equal(run.value(), { 'awaiting-code': 'resend' });
  const again = await restore(store(run), new Fakes());
  assert.equal(again.value(), { 'awaiting-code': 'idle' });
  again.actor.stop();
});

awaiting('a version-1 snapshot (no codeInfo) migrates to version 2 and still accepts CODE', async () => {
  const before = await startAccount({}, { fakes: atCode() });
  const stored = store(before) as { context: Record<string, unknown> };
  delete stored.context.codeInfo;
  const fakes = new Fakes().script('signIn', ok({ result: 'ok', profile: PROFILE }));
  const run = await restore(migrateAccountSnapshot(stored), fakes);
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(run.ctx().codeInfo, null);
  await send(run, { type: 'CODE', code: '12345' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

awaiting('signIn in flight → RESUME → idle (the code is not replayed); CODE again logs in', async () => {
  const before = await startAccount({}, { fakes: atCode().script('signIn', HANG) });
  await send(before, { type: 'CODE', code: '12345' });
  assert.equal(before.value(), { 'awaiting-code': 'signIn' });
  const fakes = new Fakes().script('signIn', ok({ result: 'ok', profile: PROFILE }));
  const run = await restore(store(before), fakes);
  assert.equal(run.value(), { 'awaiting-code': 'idle' });
  assert.is(run.ctx().pendingCode, null);
  assert.is(fakes.count('signIn'), 0);
  await send(run, { type: 'CODE', code: '12345' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

awaiting('signIn flood wait → restore → signIn with the kept code at retryAt', async () => {
  const before = await startAccount({}, { fakes: atCode().script('signIn', err('TG_API_429', { retryAfter: 10 })) });
  await send(before, { type: 'CODE', code: '12345' });
  assert.equal(before.value(), { 'awaiting-code': 'wait' });
  const fakes = new Fakes().script('signIn', ok({ result: 'ok', profile: PROFILE }));
  const run = await restore(store(before), fakes, T0 + 4000);
  await advance(run.clock, 5999);
  assert.is(fakes.count('signIn'), 0);
  await advance(run.clock, 1);
  assert.equal(fakes.calls.signIn, [{ connectionId: run.ctx().connectionId, code: '12345' }]);
  assert.is(run.status(), 'active');
  run.actor.stop();
});

awaiting('awaiting-2fa survives a restart and accepts PASSWORD', async () => {
  const before = await startAccount({}, { fakes: atCode().script('signIn', ok({ result: 'password', hint: 'h' })) });
  await send(before, { type: 'CODE', code: '12345' });
  const vault = new Map<string, string>();
  const run = await restore(store(before), new Fakes(), T0, vault);
  assert.equal(run.value(), { 'awaiting-2fa': 'idle' });
  assert.is(run.ctx().passwordHint, 'h');
  vault.set(run.ctx().connectionId, PASSWORD);
  await send(run, { type: 'PASSWORD' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

awaiting('checkPassword in flight → RESUME → idle (the password died with the process)', async () => {
  const fakes0 = atCode().script('signIn', ok({ result: 'password' })).script('checkPassword', HANG);
  const before = await startAccount({}, { fakes: fakes0 });
  await send(before, { type: 'CODE', code: '12345' });
  await send(before, { type: 'PASSWORD' });
  assert.equal(before.value(), { 'awaiting-2fa': 'checking' });
  const vault = new Map<string, string>();
  const fakes = new Fakes();
  const run = await restore(store(before), fakes, T0, vault);
  assert.equal(run.value(), { 'awaiting-2fa': 'idle' });
  assert.is(fakes.count('checkPassword'), 0);
  vault.set(run.ctx().connectionId, PASSWORD);
  await send(run, { type: 'PASSWORD' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

awaiting('awaiting-qr → RESUME exports a fresh token and restarts the watcher', async () => {
  const before = await startAccount({ login: 'qr' }, { fakes: new Fakes().script('connect', ok({ authorized: false })).script('exportQr', ok(QR1)) });
  const fakes = new Fakes().script('exportQr', ok(QR2), ok({ result: 'ok', profile: PROFILE }));
  const run = await restore(store(before), fakes, T0 + 20_000);
  assert.equal(run.value(), { 'awaiting-qr': 'showing' });
  assert.equal(run.ctx().qr, { url: QR2.url, expiresAt: QR2.expiresAt });
  assert.is(fakes.liveWatchers, 1);
  fakes.push({ type: 'QR_SCANNED' });
  await advance(run.clock, 0);
  assert.is(run.status(), 'active');
  run.actor.stop();
});

awaiting('awaiting-qr refresh in flight → RESUME → fresh token', async () => {
  const f0 = new Fakes().script('connect', ok({ authorized: false })).script('exportQr', ok(QR1), HANG);
  const before = await startAccount({ login: 'qr' }, { fakes: f0 });
  await advance(before.clock, 25_000);
  assert.equal(before.value(), { 'awaiting-qr': 'refreshing' });
  const fakes = new Fakes().script('exportQr', ok(QR2));
  const run = await restore(store(before), fakes, T0 + 26_000);
  assert.equal(run.value(), { 'awaiting-qr': 'showing' });
  assert.is(fakes.count('exportQr'), 1);
  run.actor.stop();
});

const settled = suite('restore: active, error, stopped');

settled('active → RESUME reconnects from the saved session, no new login', async () => {
  const before = await startAccount({}, { fakes: atCode().script('signIn', ok({ result: 'ok', profile: PROFILE })) });
  await send(before, { type: 'CODE', code: '12345' });
  const fakes = new Fakes().script('connect', ok({ authorized: true }));
  const run = await restore(store(before), fakes);
  assert.is(run.status(), 'active');
  assert.is(fakes.count('connect'), 1);
  assert.is(fakes.count('sendCode') + fakes.count('signIn'), 0);
  assert.is(fakes.liveWatchers, 1);
  assert.equal(run.ctx().profile, PROFILE);
  assert.equal(run.statuses, ['active', 'connecting', 'active']);
  run.actor.stop();
});

settled('active, session revoked while down → error, not a code login', async () => {
  const before = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', ok({ authorized: true })) });
  const fakes = new Fakes().script('connect', ok({ authorized: false }));
  const run = await restore(store(before), fakes);
  assert.is(run.status(), 'error');
  assert.is(run.ctx().error?.code, 'TG_SESSION_EXPIRED');
  assert.is(fakes.count('sendCode'), 0);
  run.actor.stop();
});

settled('error stays error after RESUME; RECONNECT still works', async () => {
  const before = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', err('TG_SESSION_EXPIRED')) });
  const fakes = new Fakes().script('connect', ok({ authorized: true }));
  const run = await restore(store(before), fakes);
  await advance(run.clock, 3_600_000);
  assert.is(run.status(), 'error');
  assert.is(fakes.count('connect'), 0);
  await send(run, { type: 'RECONNECT' });
  assert.is(run.status(), 'active');
  run.actor.stop();
});

settled('stopped (STOP) and stopped (logged out) stay stopped after RESUME', async () => {
  for (const event of ['STOP', 'LOGOUT'] as const) {
    const before = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', ok({ authorized: true })).script('logOut', ok(undefined)) });
    await send(before, { type: event });
    const value = before.value();
    const fakes = new Fakes();
    const run = await restore(store(before), fakes);
    await advance(run.clock, 3_600_000);
    assert.equal(run.value(), value);
    assert.equal(Object.keys(fakes.calls), []);
    run.actor.stop();
  }
});

settled('logOut in flight → RESUME logs out again → stopped', async () => {
  const before = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', ok({ authorized: true })).script('logOut', HANG) });
  await send(before, { type: 'LOGOUT' });
  assert.equal(before.value(), { stopped: { loggingOut: 'call' } });
  const fakes = new Fakes().script('logOut', ok(undefined));
  const run = await restore(store(before), fakes);
  assert.equal(run.value(), { stopped: 'loggedOut' });
  assert.is(fakes.count('logOut'), 1);
  run.actor.stop();
});

settled('logOut backing off → RESUME waits until retryAt', async () => {
  const before = await startAccount({ login: 'session' }, { fakes: new Fakes().script('connect', ok({ authorized: true })).script('logOut', err('TG_UNAVAILABLE')) });
  await send(before, { type: 'LOGOUT' });
  assert.equal(before.value(), { stopped: { loggingOut: 'wait' } });
  const fakes = new Fakes().script('logOut', ok(undefined));
  const run = await restore(store(before), fakes, T0 + 400);
  await advance(run.clock, 599);
  assert.is(fakes.count('logOut'), 0);
  await advance(run.clock, 1);
  assert.equal(run.value(), { stopped: 'loggedOut' });
  run.actor.stop();
});

const premise = suite('restore: why children are dropped');

premise('xstate 5.33 re-runs an in-flight promise child restored from a raw persisted snapshot', async () => {
  const before = await startAccount({}, { fakes: atCode().script('signIn', HANG) });
  await send(before, { type: 'CODE', code: '12345' });
  const raw = JSON.parse(JSON.stringify(before.actor.getPersistedSnapshot()));
  before.actor.stop();
  const fakes = new Fakes().script('signIn', err('TG_CODE_EXPIRED'));
  const run = await startAccount({}, { fakes, snapshot: raw });
  await flush();
  // This replay (an already-used code sent again) is what toStoredSnapshot prevents.
  assert.is(fakes.count('signIn'), 1);
  run.actor.stop();
});

premise('no password, session or code ever appears in a snapshot, stored row or event', async () => {
  const events: string[] = [];
  const inspect = (e: InspectionEvent) => {
    if (e.type === '@xstate.event') events.push(JSON.stringify(e.event));
  };
  const fakes = atCode().script('signIn', err('TG_CODE_INVALID'), ok({ result: 'password', hint: 'first pet' }));
  const run = await startAccount({}, { fakes, inspect });
  await send(run, { type: 'CODE', code: '11111' });
  await send(run, { type: 'CODE', code: '22222' });
  run.vault.set(run.ctx().connectionId, 'not the password');
  await send(run, { type: 'PASSWORD' });
  run.vault.set(run.ctx().connectionId, PASSWORD);
  await send(run, { type: 'PASSWORD' });
  assert.is(run.status(), 'active');
  const stored = JSON.stringify(toStoredSnapshot(run.actor.getPersistedSnapshot()));
  assert.ok(run.jsons.length > 10, 'every snapshot was captured');
  for (const json of [...run.jsons, ...events, stored]) {
    assert.not.ok(json.includes(PASSWORD), `password leaked: ${json.slice(0, 120)}`);
    assert.not.ok(json.includes('not the password'), 'wrong password leaked');
  }
  assert.not.ok(stored.includes('22222'), 'the used code is gone once active');
  run.actor.stop();
});

connecting.run();
awaiting.run();
settled.run();
premise.run();
