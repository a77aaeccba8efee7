// A user account that logs in with a phone code, a QR token and a 2FA password (Telegram's user
// accounts), as the connection lifecycle (connection.ts) extended with that login part.
//
// STATUS: connecting · awaiting-code · awaiting-qr · awaiting-2fa · active · error · stopped.
//
// SLOTS besides the lifecycle's connect/watch/logOut (inputs `{ connectionId }` plus non-secret step
// data; errors are objects with `code` and `category`, see failure.ts):
//   sendCode      ({connectionId})        → { codeType, nextType?, length?, resendAfter? }  the phone comes from the connection's secrets
//   resendCode    ({connectionId})        → the same, for the next way Telegram sends the code (auth.resendCode)
//   signIn        ({connectionId, code})  → { result:'ok', profile } | { result:'password', hint? }
//   checkPassword ({connectionId})        → { profile }   the password is NOT in any event/input: the
//                    supervisor holds it out-of-band from PASSWORD while the machine is in a state
//                    tagged 'secret' (awaiting-2fa.checking/wait) and drops it when it leaves them
//   exportQr      ({connectionId})        → { result:'token', url, expiresAt(epoch ms) } | ok | password
//   watch (in awaiting-qr too) also sends QR_SCANNED.
//
// EVENTS besides the lifecycle's: CODE {code}, RESEND (awaiting-code.idle), PASSWORD, QR_SCANNED. Use `snapshot.can(event)` to
// answer 409 INVALID_STATE. After CODE/PASSWORD the API waits until `!snapshot.hasTag('busy')`, then
// answers from the status and `context.error` (a rejected code or password → 422; an `error.retryAt`
// means the step is waiting out a rate limit or backoff and will retry by itself).
//
// What RESUME does in the login part's states (the lifecycle's are in connection.ts):
//   connecting.sendCode, .exportQr → connect again (connect decides again what is needed)
//   awaiting-code.idle        → nothing: still accepts CODE
//   awaiting-code.resend      → idle (the caller asks again; the code sent before still works)
//   awaiting-code.signIn      → idle (the request that carried the code died; the client resends)
//   awaiting-code.wait        → waits until retryAt, then signIn with the kept code
//   awaiting-2fa.*            → idle (the out-of-band password died with the process)
//   awaiting-qr.*             → exports a fresh token and restarts the watcher
import { assign, fromPromise, type AnyStateMachine, type SnapshotFrom } from 'xstate';
import { clockOf } from './backoff.ts';
import { connectionMachine, errorParams, failTo, type LifecycleErrors, type Profile, type StepInput } from './connection.ts';
import type { Failure } from './failure.ts';
import { topLevelState } from './persistence.ts';

// Bump when states or context change shape; stored next to each snapshot so the supervisor can
// refuse (or migrate) a snapshot written by another version instead of restoring garbage.
// 2: awaiting-code.resend, awaiting-2fa.recovering and context.codeInfo (next code type, length, resend time); migrateAccountSnapshot reads 1.
export const MACHINE_VERSION = 2;

export type AccountStatus = 'connecting' | 'awaiting-code' | 'awaiting-qr' | 'awaiting-2fa' | 'active' | 'error' | 'stopped';
export type LoginMethod = 'phone' | 'qr' | 'session';
export type { Profile, StepInput };

export interface QrToken {
  url: string;
  expiresAt: number;
}

export interface AccountInput {
  connectionId: string;
  login: LoginMethod;
  backoff?: { baseMs?: number; capMs?: number };
}

export interface SignInInput extends StepInput {
  code: string;
}
export interface SendCodeOutput {
  codeType: string;
  /** How Telegram will send the code on a resend; absent when it has no other way. */
  nextType?: string;
  length?: number;
  /** Epoch ms from which a resend is allowed. */
  resendAfter?: number;
}
export type CodeInfo = Omit<SendCodeOutput, 'codeType'>;
export type SignInOutput = { result: 'ok'; profile: Profile } | { result: 'password'; hint?: string };
export interface CheckPasswordOutput {
  profile: Profile;
}
export type ExportQrOutput = ({ result: 'token' } & QrToken) | SignInOutput;

export interface AccountErrors extends LifecycleErrors {
  /** connect found the saved session not authorised any more (category reauthorize). */
  sessionGone: Failure;
}

const notProvided = (slot: string) => async (): Promise<never> => {
  throw new Error(`account machine: I/O slot '${slot}' not provided`);
};

// Refresh a QR token 5 s before it expires (Telegram's live ~30 s) so the page never shows a
// dead code; never sooner than 1 s, so a token that is already stale cannot spin the machine.
const QR_REFRESH_LEAD_MS = 5_000;
const QR_REFRESH_MIN_MS = 1_000;

const ID = 'account';
const info = (f: Failure) => ({ code: f.code, message: f.message });

/** The account machine in the platform's words for the failures it notices itself. */
export function accountMachine(errors: AccountErrors): AnyStateMachine {
  return connectionMachine({
    id: ID,
    errors,
    actors: {
      sendCode: fromPromise<SendCodeOutput, StepInput>(notProvided('sendCode')),
      resendCode: fromPromise<SendCodeOutput, StepInput>(notProvided('resendCode')),
      signIn: fromPromise<SignInOutput, SignInInput>(notProvided('signIn')),
      checkPassword: fromPromise<CheckPasswordOutput, StepInput>(notProvided('checkPassword')),
      recoverPassword: fromPromise<CheckPasswordOutput, StepInput>(notProvided('recoverPassword')),
      exportQr: fromPromise<ExportQrOutput, StepInput>(notProvided('exportQr')),
    },
    delays: {
      untilQrRefresh: ({ context, system }: any) =>
        context.qr === null
          ? QR_REFRESH_MIN_MS
          : Math.max(QR_REFRESH_MIN_MS, context.qr.expiresAt - QR_REFRESH_LEAD_MS - clockOf(system).now()),
    },
    actions: {
      setCodeType: assign((_, params: SendCodeOutput) => ({ codeType: params.codeType, codeInfo: codeInfoOf(params) })),
      setQr: assign((_, params: QrToken) => ({ qr: { url: params.url, expiresAt: params.expiresAt } })),
      setHint: assign((_, params: { hint: string | undefined }) => ({ passwordHint: params.hint ?? null })),
      // The code of the signIn in progress, kept only so a rate-limit wait or backoff can retry it.
      setPendingCode: assign((_, params: { code: string }) => ({ pendingCode: params.code, error: null, retryAt: null })),
      clearPendingCode: assign({ pendingCode: null }),
    },
    context: (input: AccountInput) => ({ login: input.login, codeType: null, codeInfo: null, qr: null, passwordHint: null, pendingCode: null }),
    onActive: { codeType: null, codeInfo: null, qr: null, passwordHint: null, pendingCode: null },
    cleanup: ['clearPendingCode'],
    unauthorized: [
      // A saved session that is not authorised any more was revoked: no code login behind the user's back.
      { guard: ({ context }: any) => context.login === 'session', target: `#${ID}.error`, actions: { type: 'setError', params: info(errors.sessionGone) } },
      { guard: ({ context }: any) => context.login === 'qr', target: 'exportQr' },
      { target: 'sendCode' },
    ],
    connecting: {
      sendCode: {
        tags: 'busy',
        invoke: {
          id: 'sendCode',
          src: 'sendCode',
          input: ({ context }: any) => ({ connectionId: context.connectionId }),
          onDone: {
            target: `#${ID}.awaiting-code`,
            actions: { type: 'setCodeType', params: ({ event }: any) => event.output },
          },
          onError: failTo(ID, 'wait'),
        },
        on: { RESUME: 'connect' },
      },
      exportQr: {
        tags: 'busy',
        invoke: {
          id: 'exportQr',
          src: 'exportQr',
          input: ({ context }: any) => ({ connectionId: context.connectionId }),
          onDone: qrDone('#account.awaiting-qr'),
          onError: failTo(ID, 'wait'),
        },
        on: { RESUME: 'connect' },
      },
    },
    states: {
      'awaiting-code': {
        entry: 'settled',
        initial: 'idle',
        states: {
          idle: {
            on: {
              CODE: { target: 'signIn', actions: { type: 'setPendingCode', params: ({ event }: any) => ({ code: event.code }) } },
              RESEND: { target: 'resend', actions: 'clearError' },
            },
          },
          // Whatever the answer, back to idle: the code sent before still signs in. A refusal (no
          // next way, too early, Telegram unreachable) stays in context.error for the caller.
          resend: {
            tags: 'busy',
            invoke: {
              id: 'resendCode',
              src: 'resendCode',
              input: ({ context }: any) => ({ connectionId: context.connectionId }),
              onDone: { target: 'idle', actions: { type: 'setCodeType', params: ({ event }: any) => event.output } },
              onError: { target: 'idle', actions: { type: 'recordFailure', params: errorParams } },
            },
            on: { RESUME: { target: 'idle', actions: 'clearError' } },
          },
          signIn: {
            tags: 'busy',
            invoke: {
              id: 'signIn',
              src: 'signIn',
              input: ({ context }: any) => ({ connectionId: context.connectionId, code: context.pendingCode ?? '' }),
              onDone: [
                {
                  guard: ({ event }: any) => event.output.result === 'password',
                  target: `#${ID}.awaiting-2fa`,
                  actions: [{ type: 'setHint', params: ({ event }: any) => ({ hint: hintOf(event.output) }) }, 'clearPendingCode'],
                },
                { target: `#${ID}.active`, actions: { type: 'setProfile', params: ({ event }: any) => ({ profile: profileOf(event.output) }) } },
              ],
              onError: [
                // Wrong or expired code: stay, with error set, so the API answers 422 and the user retries.
                { guard: { type: 'isUserError', params: errorParams }, target: 'idle', actions: [{ type: 'recordFailure', params: errorParams }, 'clearPendingCode'] },
                ...failTo(ID, 'wait', ['clearPendingCode']),
              ],
            },
            on: { RESUME: { target: 'idle', actions: ['clearPendingCode', 'clearError'] } },
          },
          wait: {
            after: { untilRetry: 'signIn' },
            on: {
              CODE: { target: 'signIn', actions: { type: 'setPendingCode', params: ({ event }: any) => ({ code: event.code }) } },
              RESUME: { target: 'wait', reenter: true },
            },
          },
        },
      },

      'awaiting-2fa': {
        entry: 'settled',
        initial: 'idle',
        states: {
          idle: { on: { PASSWORD: { target: 'checking', actions: 'clearError' }, RECOVER: { target: 'recovering', actions: 'clearError' } } },
          // A forgotten password: the e-mailed recovery code (and an optional new password) are held
          // out of band like the password ('secret'); any refusal returns to idle for the caller.
          recovering: {
            tags: ['busy', 'secret'],
            invoke: {
              id: 'recoverPassword',
              src: 'recoverPassword',
              input: ({ context }: any) => ({ connectionId: context.connectionId }),
              onDone: { target: `#${ID}.active`, actions: { type: 'setProfile', params: ({ event }: any) => ({ profile: event.output.profile }) } },
              onError: { target: 'idle', actions: { type: 'recordFailure', params: errorParams } },
            },
            on: { RESUME: { target: 'idle', actions: 'clearError' } },
          },
          // 'secret': the supervisor holds the password out of band while a state has this tag.
          checking: {
            tags: ['busy', 'secret'],
            invoke: {
              id: 'checkPassword',
              src: 'checkPassword',
              input: ({ context }: any) => ({ connectionId: context.connectionId }),
              onDone: { target: `#${ID}.active`, actions: { type: 'setProfile', params: ({ event }: any) => ({ profile: event.output.profile }) } },
              onError: [
                { guard: { type: 'isUserError', params: errorParams }, target: 'idle', actions: { type: 'recordFailure', params: errorParams } },
                ...failTo(ID, 'wait'),
              ],
            },
            on: { RESUME: { target: 'idle', actions: 'clearError' } },
          },
          wait: {
            tags: 'secret',
            after: { untilRetry: 'checking' },
            on: { PASSWORD: { target: 'checking', actions: 'clearError' }, RESUME: { target: 'idle', actions: 'clearError' } },
          },
        },
      },

      'awaiting-qr': {
        entry: 'settled',
        invoke: {
          id: 'watch',
          src: 'watch',
          input: ({ context }: any) => ({ connectionId: context.connectionId }),
          onError: failTo(ID, `#${ID}.connecting.wait`),
        },
        on: {
          CONNECTION_DROPPED: { target: `#${ID}.connecting.wait`, actions: { type: 'recordFailure', params: ({ event }: any) => ({ error: event.error ?? errors.dropped }) } },
          REVOKED: { target: `#${ID}.error`, actions: { type: 'recordFailure', params: ({ event }: any) => ({ error: event.error ?? errors.revoked }) } },
          // Re-enters awaiting-qr itself, so the watcher is started again as well.
          RESUME: { target: '.refreshing', reenter: true },
        },
        initial: 'showing',
        states: {
          showing: {
            after: { untilQrRefresh: 'refreshing' },
            on: { QR_SCANNED: 'refreshing' },
          },
          refreshing: {
            tags: 'busy',
            invoke: {
              id: 'exportQr',
              src: 'exportQr',
              input: ({ context }: any) => ({ connectionId: context.connectionId }),
              onDone: qrDone('showing'),
              onError: failTo(ID, 'wait'),
            },
            // A scan during an export started before it: export again so the acceptance is seen now.
            on: { QR_SCANNED: { target: 'refreshing', reenter: true } },
          },
          wait: { after: { untilRetry: 'refreshing' } },
        },
      },
    },
  });
}

// exportQr answers a fresh token (show it), a scan that needs the 2FA password, or a finished login.
function qrDone(tokenTarget: string) {
  return [
    {
      guard: ({ event }: any) => event.output.result === 'token',
      target: tokenTarget,
      actions: { type: 'setQr', params: ({ event }: any) => event.output as QrToken },
    },
    {
      guard: ({ event }: any) => event.output.result === 'password',
      target: `#${ID}.awaiting-2fa`,
      actions: { type: 'setHint', params: ({ event }: any) => ({ hint: hintOf(event.output) }) },
    },
    { target: `#${ID}.active`, actions: { type: 'setProfile', params: ({ event }: any) => ({ profile: profileOf(event.output) }) } },
  ];
}

const codeInfoOf = (o: SendCodeOutput): CodeInfo => ({
  ...(o.nextType ? { nextType: o.nextType } : {}),
  ...(o.length ? { length: o.length } : {}),
  ...(o.resendAfter ? { resendAfter: o.resendAfter } : {}),
});

/** A version-1 snapshot in version 2's shape: the same states, context without codeInfo. */
export function migrateAccountSnapshot(stored: Record<string, unknown>): Record<string, unknown> {
  return { ...stored, context: { codeInfo: null, ...(stored.context as object) } };
}

const profileOf = (output: SignInOutput | ExportQrOutput): Profile | undefined =>
  output.result === 'ok' ? output.profile : undefined;
const hintOf = (output: SignInOutput | ExportQrOutput): string | undefined =>
  output.result === 'password' ? output.hint : undefined;

export type AccountSnapshot = SnapshotFrom<ReturnType<typeof accountMachine>>;

export const statusOf = (snapshot: { value: unknown }): AccountStatus => topLevelState(snapshot) as AccountStatus;
