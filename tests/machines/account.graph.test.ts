// Every state of the account machine is reachable and every declared transition is taken, found
// by exhaustive exploration (xstate/graph) over all events and all slot outcomes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { EventObject } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { statusOf } from '../../machines/account.machine.ts';
import { machine as accountMachine } from './account-fixture.ts';
import { afterEvents, declaredTransitions, explore } from './graph-coverage.ts';

const PROFILE = { platformUserId: '1', displayName: 'A' };
const done = (id: string, output: unknown) => ({ type: `xstate.done.actor.${id}`, output });
const failed = (id: string, error: unknown) => ({ type: `xstate.error.actor.${id}`, error });
const ERRORS = [
  { code: 'TG_API_429', category: 'rate-limited-until', retryAfter: 5, message: 'flood' },
  { code: 'TG_UNAVAILABLE', category: 'retry', message: 'down' },
  { code: 'TG_SESSION_EXPIRED', category: 'reauthorize', message: 'revoked' },
  { code: 'TG_CODE_INVALID', category: 'rejected', message: 'wrong code' },
  { code: 'TG_PASSWORD_INVALID', category: 'rejected', message: 'wrong password' },
  new Error('unknown'),
];
const SLOTS = ['connect', 'sendCode', 'resendCode', 'signIn', 'checkPassword', 'recoverPassword', 'exportQr', 'logOut', 'watch'];

const EVENTS: Array<EventObject & Record<string, unknown>> = [
  { type: 'CODE', code: '12345' },
  { type: 'RESEND' },
  { type: 'RECOVER' },
  { type: 'PASSWORD' },
  { type: 'QR_SCANNED' },
  { type: 'CONNECTION_DROPPED' },
  { type: 'REVOKED' },
  { type: 'UPDATE', update: { text: 'hi' } },
  { type: 'LOGOUT' },
  { type: 'STOP' },
  { type: 'RECONNECT' },
  { type: 'BREAKER_OPEN', retryAt: 1 },
  { type: 'MEMORY_EXCEEDED' },
  { type: 'RESUME' },
  ...ERRORS.map((error) => ({ type: 'PLATFORM_ERROR', error })),
  done('connect', { authorized: true, profile: PROFILE }),
  done('connect', { authorized: false }),
  done('sendCode', { codeType: 'app' }),
  done('resendCode', { codeType: 'sms', nextType: 'call', length: 5, resendAfter: 1 }),
  done('signIn', { result: 'ok', profile: PROFILE }),
  done('signIn', { result: 'password', hint: 'h' }),
  done('checkPassword', { profile: PROFILE }),
  done('recoverPassword', { profile: PROFILE }),
  done('exportQr', { result: 'token', url: 'tg://login?token=A', expiresAt: 1 }),
  done('exportQr', { result: 'ok', profile: PROFILE }),
  done('exportQr', { result: 'password' }),
  done('logOut', undefined),
  ...SLOTS.flatMap((slot) => ERRORS.map((error) => failed(slot, error))),
  ...afterEvents(accountMachine),
];

// Context that changes which branch a guard takes is part of the state's identity; the rest
// (timestamps, error texts) is not, or the exploration would never end.
const serialize = ({ value, context }: { value: unknown; context: { login: string; attempt: number } }) =>
  JSON.stringify([value, context.login, Math.min(context.attempt, 3)]);

const INPUTS = (['phone', 'qr', 'session'] as const).map((login) => ({ connectionId: 'c', login }));

test('every status is reachable, no step crashes the machine, every declared transition is taken', () => {
  const cov = explore(accountMachine, { inputs: INPUTS, events: EVENTS, serialize });
  assert.equal([...cov.reached].sort(), ['active', 'awaiting-2fa', 'awaiting-code', 'awaiting-qr', 'connecting', 'error', 'stopped']);
  assert.equal(cov.crashed, []);
  assert.equal(cov.missing, [], `transitions never taken:\n${cov.missing.join('\n')}`);
  assert.ok(declaredTransitions(accountMachine).length > 60, 'the enumeration sees the whole machine');
});

test('shortest paths: without an authorised session, phone login is connect → sendCode → CODE → signIn', () => {
  const paths = getShortestPaths(accountMachine, {
    input: INPUTS[0],
    events: EVENTS.filter((e) => !('output' in e && (e.output as { authorized?: boolean } | undefined)?.authorized)) as never,
    serializeState: (s) => JSON.stringify(s.value),
    toState: (s) => statusOf(s) === 'active',
  });
  const shortest = paths.reduce((a, b) => (b.steps.length < a.steps.length ? b : a));
  assert.equal(shortest.steps.map((s) => s.event.type), [
    'xstate.init', 'xstate.done.actor.connect', 'xstate.done.actor.sendCode', 'CODE', 'xstate.done.actor.signIn',
  ]);
});

test.run();
