// A Telegram user account (phone code, QR, 2FA, saved session) as a pure state machine.
//
// STATUS: the top-level state is the API status: connecting · awaiting-code · awaiting-qr ·
// awaiting-2fa · active · error · stopped (`statusOf`). Sub-states are internal.
//
// I/O SLOTS (src/ supplies them with `.provide({ actors })`; the placeholders throw). Every
// input is `{ connectionId }` plus non-secret step data; errors are objects with a string
// `code`, optional `retryable` and `retryAfter` (s); anything else counts as retryable.
//   connect       ({connectionId})        → { authorized, profile? }  idempotent: reuse a live client
//   sendCode      ({connectionId})        → { codeType }               phone comes from the connection row
//   signIn        ({connectionId, code})  → { result:'ok', profile } | { result:'password', hint? }
//   checkPassword ({connectionId})        → { profile }   the password is NOT in any event/input: the
//                    supervisor holds it out-of-band from PASSWORD until the machine leaves
//                    awaiting-2fa.checking/wait (reaches idle, active or error) and then drops it
//   exportQr      ({connectionId})        → { result:'token', url, expiresAt(epoch ms) } | ok | password
//   logOut        ({connectionId})        → void
//   watch (callback, in awaiting-qr and active) sends CONNECTION_DROPPED, SESSION_REVOKED,
//                    QR_SCANNED, UPDATE {update}; UPDATE is re-emitted as `update` (actor.on('update')).
//
// EVENTS from the API/supervisor: CODE {code}, PASSWORD, LOGOUT, STOP, RECONNECT, BREAKER_OPEN
// {retryAt}, MEMORY_EXCEEDED, PLATFORM_ERROR {error}, RESUME. Use `snapshot.can(event)` to answer
// 409 INVALID_STATE: events a state ignores are not `can`. States with a slot call in flight carry
// the tag 'busy': after CODE/PASSWORD the API waits until `!snapshot.hasTag('busy')`, then answers
// from the status and `context.error` (TG_CODE_INVALID/EXPIRED, TG_PASSWORD_INVALID → 422; an
// `error.retryAt` means the step is waiting out a flood wait or backoff and will retry by itself).
//
// RESTORE RULE (the supervisor follows it exactly):
//   persist:  toStoredSnapshot(actor.getPersistedSnapshot())   (children dropped, see persistence.ts)
//   restore:  createActor(accountMachine.provide(impl), { snapshot: stored, input }).start()
//             then immediately actor.send({ type: 'RESUME' }).
//   What RESUME does:
//     connecting.wait           → waits the REMAINING time until context.retryAt, then retries
//     connecting.* (in flight)  → starts over at connect (connect is idempotent)
//     awaiting-code.idle        → nothing: still accepts CODE
//     awaiting-code.signIn      → idle (the request that carried the code died; the client resends)
//     awaiting-code.wait        → waits until retryAt, then signIn with the kept code
//     awaiting-2fa.*            → idle (the out-of-band password died with the process)
//     awaiting-qr.*             → exports a fresh token and restarts the watcher
//     active                    → connecting: reconnects from the saved session (login 'session'),
//                                 never a new login
//     error, stopped.idle, stopped.loggedOut → nothing
//     stopped.loggingOut.*      → logOut again (idempotent) / keeps waiting until retryAt
//   A flood wait and a backoff both live in `wait` states and are restored the same way.
//
// BACKOFF: retryable failures wait random() × min(cap, base × 2^attempt) (backoff.ts) with
// `attempt` and `retryAt` in context and `error` {code, message, retryAt} visible to the API.
// Flood waits (TG_API_429) wait retryAfter and never count as attempts. The machine retries
// forever; the supervisor's breaker stops it with BREAKER_OPEN and frees it with RECONNECT.
import { assign, emit, fromCallback, fromPromise, setup, type SnapshotFrom } from 'xstate';
import { clockOf, remainingMs, resolveBackoff, type BackoffConfig } from './backoff.ts';
import { applyFailure, failureKind, isConnectionFatal, type ErrorInfo } from './failure.ts';
import { topLevelState } from './persistence.ts';

// Bump when states or context change shape; stored next to each snapshot so the supervisor can
// refuse (or migrate) a snapshot written by another version instead of restoring garbage.
export const MACHINE_VERSION = 1;

export type AccountStatus = 'connecting' | 'awaiting-code' | 'awaiting-qr' | 'awaiting-2fa' | 'active' | 'error' | 'stopped';
export type LoginMethod = 'phone' | 'qr' | 'session';

export interface Profile {
  platformUserId: string;
  displayName: string;
  username?: string;
}
export interface QrToken {
  url: string;
  expiresAt: number;
}

export interface AccountInput {
  connectionId: string;
  login: LoginMethod;
  backoff?: Partial<BackoffConfig>;
}

export interface AccountContext {
  connectionId: string;
  // 'session' once the account has been active: every later connect is a reconnect, not a login.
  login: LoginMethod;
  backoff: BackoffConfig;
  attempt: number;
  retryAt: number | null;
  error: ErrorInfo | null;
  codeType: string | null;
  qr: QrToken | null;
  passwordHint: string | null;
  // The code of the signIn in progress, kept only so a flood wait or backoff can retry it.
  pendingCode: string | null;
  profile: Profile | null;
  lastActiveAt: number | null;
}

export type AccountEvent =
  | { type: 'CODE'; code: string }
  | { type: 'PASSWORD' }
  | { type: 'QR_SCANNED' }
  | { type: 'CONNECTION_DROPPED' }
  | { type: 'SESSION_REVOKED' }
  | { type: 'UPDATE'; update: unknown }
  | { type: 'LOGOUT' }
  | { type: 'STOP' }
  | { type: 'RECONNECT' }
  | { type: 'BREAKER_OPEN'; retryAt: number }
  | { type: 'MEMORY_EXCEEDED' }
  | { type: 'PLATFORM_ERROR'; error: unknown }
  | { type: 'RESUME' };

export type AccountWatchEvent = Extract<AccountEvent, { type: 'CONNECTION_DROPPED' | 'SESSION_REVOKED' | 'QR_SCANNED' | 'UPDATE' }>;
export type AccountEmitted = { type: 'update'; connectionId: string; update: unknown };

export interface StepInput {
  connectionId: string;
}
export interface SignInInput extends StepInput {
  code: string;
}
export interface ConnectOutput {
  authorized: boolean;
  profile?: Profile;
}
export interface SendCodeOutput {
  codeType: string;
}
export type SignInOutput = { result: 'ok'; profile: Profile } | { result: 'password'; hint?: string };
export interface CheckPasswordOutput {
  profile: Profile;
}
export type ExportQrOutput = ({ result: 'token' } & QrToken) | SignInOutput;

const notProvided = (slot: string) => async (): Promise<never> => {
  throw new Error(`account machine: I/O slot '${slot}' not provided`);
};

// Refresh a QR token 5 s before it expires (Telegram's live ~30 s) so the page never shows a
// dead code; never sooner than 1 s, so a token that is already stale cannot spin the machine.
const QR_REFRESH_LEAD_MS = 5_000;
const QR_REFRESH_MIN_MS = 1_000;
// A logout that keeps failing on the network is given up after 3 tries: the supervisor deletes
// the secrets anyway, and Telegram expires an unused auth key on its own.
const LOGOUT_TRIES = 3;

const DROPPED = { code: 'TG_UNAVAILABLE', message: 'connection to Telegram dropped', retryable: true };
const REVOKED: ErrorInfo = { code: 'TG_SESSION_EXPIRED', message: 'the session was revoked or logged out elsewhere; log in again' };
const SESSION_GONE: ErrorInfo = { code: 'TG_SESSION_EXPIRED', message: 'the saved session is no longer authorised; log in again' };
const MEMORY: ErrorInfo = { code: 'MEMORY_BUDGET_EXCEEDED', message: 'the connection exceeded its memory budget' };

const errorParams = ({ event }: { event: { error: unknown } }) => ({ error: event.error });

export const accountMachine = setup({
  types: {
    context: {} as AccountContext,
    events: {} as AccountEvent,
    input: {} as AccountInput,
    emitted: {} as AccountEmitted,
  },
  actors: {
    connect: fromPromise<ConnectOutput, StepInput>(notProvided('connect')),
    sendCode: fromPromise<SendCodeOutput, StepInput>(notProvided('sendCode')),
    signIn: fromPromise<SignInOutput, SignInInput>(notProvided('signIn')),
    checkPassword: fromPromise<CheckPasswordOutput, StepInput>(notProvided('checkPassword')),
    exportQr: fromPromise<ExportQrOutput, StepInput>(notProvided('exportQr')),
    logOut: fromPromise<void, StepInput>(notProvided('logOut')),
    watch: fromCallback<AccountEvent, StepInput>(() => {
      throw new Error("account machine: I/O slot 'watch' not provided");
    }),
  },
  delays: {
    untilRetry: ({ context, system }) => remainingMs(context.retryAt, clockOf(system).now()),
    untilQrRefresh: ({ context, system }) =>
      context.qr === null
        ? QR_REFRESH_MIN_MS
        : Math.max(QR_REFRESH_MIN_MS, context.qr.expiresAt - QR_REFRESH_LEAD_MS - clockOf(system).now()),
  },
  guards: {
    isFatal: (_, params: { error: unknown }) => {
      const kind = failureKind(params.error);
      return kind === 'fatal' || kind === 'user';
    },
    isUserError: (_, params: { error: unknown }) => failureKind(params.error) === 'user',
    isFlood: (_, params: { error: unknown }) => failureKind(params.error) === 'flood',
    isRetryable: (_, params: { error: unknown }) => failureKind(params.error) === 'retry',
    isConnectionFatal: (_, params: { error: unknown }) => isConnectionFatal(params.error),
    logoutTriesLeft: ({ context }) => context.attempt + 1 < LOGOUT_TRIES,
  },
  actions: {
    recordFailure: assign(({ context, system }, params: { error: unknown }) =>
      applyFailure(context, params.error, context.backoff, clockOf(system)),
    ),
    setError: assign((_, params: ErrorInfo) => ({ error: params, retryAt: null })),
    clearError: assign({ error: null, retryAt: null }),
    resetRetry: assign({ attempt: 0, error: null, retryAt: null }),
    setProfile: assign((_, params: { profile: Profile | undefined }) => (params.profile ? { profile: params.profile } : {})),
    setCodeType: assign((_, params: { codeType: string }) => ({ codeType: params.codeType })),
    setQr: assign((_, params: QrToken) => ({ qr: { url: params.url, expiresAt: params.expiresAt } })),
    setHint: assign((_, params: { hint: string | undefined }) => ({ passwordHint: params.hint ?? null })),
    setPendingCode: assign((_, params: { code: string }) => ({ pendingCode: params.code, error: null, retryAt: null })),
    clearPendingCode: assign({ pendingCode: null }),
    stopWaiting: assign(({ context }) => ({
      retryAt: null,
      error: context.error === null ? null : { code: context.error.code, message: context.error.message },
    })),
    // A stable waiting point reached: the next failure starts the schedule from 1 s again.
    settled: assign({ attempt: 0, error: null, retryAt: null }),
    enterActive: assign(({ system }) => ({
      login: 'session' as const,
      attempt: 0,
      retryAt: null,
      error: null,
      codeType: null,
      qr: null,
      passwordHint: null,
      pendingCode: null,
      lastActiveAt: clockOf(system).now(),
    })),
    emitUpdate: emit(({ context, event }) => ({
      type: 'update' as const,
      connectionId: context.connectionId,
      update: event.type === 'UPDATE' ? event.update : undefined,
    })),
  },
}).createMachine({
  id: 'account',
  context: ({ input }) => ({
    connectionId: input.connectionId,
    login: input.login,
    backoff: resolveBackoff(input.backoff),
    attempt: 0,
    retryAt: null,
    error: null,
    codeType: null,
    qr: null,
    passwordHint: null,
    pendingCode: null,
    profile: null,
    lastActiveAt: null,
  }),
  initial: 'connecting',
  // Supervisor events valid in every state except `stopped`, which overrides them.
  on: {
    STOP: { target: '#account.stopped.idle', actions: ['clearError', 'clearPendingCode'] },
    LOGOUT: { target: '#account.stopped.loggingOut', actions: ['resetRetry', 'clearPendingCode'] },
    RECONNECT: { target: '#account.connecting', actions: ['resetRetry', 'clearPendingCode'] },
    BREAKER_OPEN: {
      target: '#account.error',
      actions: [
        { type: 'setError', params: ({ event }) => ({ code: 'CIRCUIT_OPEN', message: 'too many failures; retrying later', retryAt: event.retryAt }) },
        'clearPendingCode',
      ],
    },
    MEMORY_EXCEEDED: { target: '#account.error', actions: [{ type: 'setError', params: MEMORY }, 'clearPendingCode'] },
  },
  states: {
    connecting: {
      initial: 'connect',
      states: {
        connect: {
          tags: 'busy',
          invoke: {
            id: 'connect',
            src: 'connect',
            input: ({ context }) => ({ connectionId: context.connectionId }),
            onDone: [
              {
                guard: ({ event }) => event.output.authorized,
                target: '#account.active',
                actions: { type: 'setProfile', params: ({ event }) => ({ profile: event.output.profile }) },
              },
              // A saved session that is not authorised any more was revoked: no code login behind the user's back.
              { guard: ({ context }) => context.login === 'session', target: '#account.error', actions: { type: 'setError', params: SESSION_GONE } },
              { guard: ({ context }) => context.login === 'qr', target: 'exportQr' },
              { target: 'sendCode' },
            ],
            onError: [
              { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: { type: 'recordFailure', params: errorParams } },
              { target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
            ],
          },
          on: { RESUME: { target: 'connect', reenter: true } },
        },
        sendCode: {
          tags: 'busy',
          invoke: {
            id: 'sendCode',
            src: 'sendCode',
            input: ({ context }) => ({ connectionId: context.connectionId }),
            onDone: {
              target: '#account.awaiting-code',
              actions: { type: 'setCodeType', params: ({ event }) => ({ codeType: event.output.codeType }) },
            },
            onError: [
              { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: { type: 'recordFailure', params: errorParams } },
              { target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
            ],
          },
          on: { RESUME: 'connect' },
        },
        exportQr: {
          tags: 'busy',
          invoke: {
            id: 'exportQr',
            src: 'exportQr',
            input: ({ context }) => ({ connectionId: context.connectionId }),
            onDone: [
              {
                guard: ({ event }) => event.output.result === 'token',
                target: '#account.awaiting-qr',
                actions: { type: 'setQr', params: ({ event }) => event.output as QrToken },
              },
              {
                guard: ({ event }) => event.output.result === 'password',
                target: '#account.awaiting-2fa',
                actions: { type: 'setHint', params: ({ event }) => ({ hint: hintOf(event.output) }) },
              },
              { target: '#account.active', actions: { type: 'setProfile', params: ({ event }) => ({ profile: profileOf(event.output) }) } },
            ],
            onError: [
              { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: { type: 'recordFailure', params: errorParams } },
              { target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
            ],
          },
          on: { RESUME: 'connect' },
        },
        // Backoff and flood waits. Everything restarts at connect: connect is idempotent and
        // decides again whether a code, a QR token or nothing is needed.
        wait: {
          after: { untilRetry: 'connect' },
          on: { RESUME: { target: 'wait', reenter: true } },
        },
      },
    },

    'awaiting-code': {
      entry: 'settled',
      initial: 'idle',
      states: {
        idle: {
          on: { CODE: { target: 'signIn', actions: { type: 'setPendingCode', params: ({ event }) => ({ code: event.code }) } } },
        },
        signIn: {
          tags: 'busy',
          invoke: {
            id: 'signIn',
            src: 'signIn',
            input: ({ context }) => ({ connectionId: context.connectionId, code: context.pendingCode ?? '' }),
            onDone: [
              {
                guard: ({ event }) => event.output.result === 'password',
                target: '#account.awaiting-2fa',
                actions: [{ type: 'setHint', params: ({ event }) => ({ hint: hintOf(event.output) }) }, 'clearPendingCode'],
              },
              { target: '#account.active', actions: { type: 'setProfile', params: ({ event }) => ({ profile: profileOf(event.output) }) } },
            ],
            onError: [
              // Wrong or expired code: stay, with error set, so the API answers 422 and the user retries.
              { guard: { type: 'isUserError', params: errorParams }, target: 'idle', actions: [{ type: 'recordFailure', params: errorParams }, 'clearPendingCode'] },
              { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: [{ type: 'recordFailure', params: errorParams }, 'clearPendingCode'] },
              { target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
            ],
          },
          on: { RESUME: { target: 'idle', actions: ['clearPendingCode', 'clearError'] } },
        },
        wait: {
          after: { untilRetry: 'signIn' },
          on: {
            CODE: { target: 'signIn', actions: { type: 'setPendingCode', params: ({ event }) => ({ code: event.code }) } },
            RESUME: { target: 'wait', reenter: true },
          },
        },
      },
    },

    'awaiting-2fa': {
      entry: 'settled',
      initial: 'idle',
      states: {
        idle: { on: { PASSWORD: { target: 'checking', actions: 'clearError' } } },
        checking: {
          tags: 'busy',
          invoke: {
            id: 'checkPassword',
            src: 'checkPassword',
            input: ({ context }) => ({ connectionId: context.connectionId }),
            onDone: { target: '#account.active', actions: { type: 'setProfile', params: ({ event }) => ({ profile: event.output.profile }) } },
            onError: [
              { guard: { type: 'isUserError', params: errorParams }, target: 'idle', actions: { type: 'recordFailure', params: errorParams } },
              { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: { type: 'recordFailure', params: errorParams } },
              { target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
            ],
          },
          on: { RESUME: { target: 'idle', actions: 'clearError' } },
        },
        wait: {
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
        input: ({ context }) => ({ connectionId: context.connectionId }),
        onError: [
          { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: { type: 'recordFailure', params: errorParams } },
          { target: '#account.connecting.wait', actions: { type: 'recordFailure', params: errorParams } },
        ],
      },
      on: {
        CONNECTION_DROPPED: { target: '#account.connecting.wait', actions: { type: 'recordFailure', params: { error: DROPPED } } },
        SESSION_REVOKED: { target: '#account.error', actions: { type: 'setError', params: REVOKED } },
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
            input: ({ context }) => ({ connectionId: context.connectionId }),
            onDone: [
              {
                guard: ({ event }) => event.output.result === 'token',
                target: 'showing',
                actions: { type: 'setQr', params: ({ event }) => event.output as QrToken },
              },
              {
                guard: ({ event }) => event.output.result === 'password',
                target: '#account.awaiting-2fa',
                actions: { type: 'setHint', params: ({ event }) => ({ hint: hintOf(event.output) }) },
              },
              { target: '#account.active', actions: { type: 'setProfile', params: ({ event }) => ({ profile: profileOf(event.output) }) } },
            ],
            onError: [
              { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: { type: 'recordFailure', params: errorParams } },
              { target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
            ],
          },
          // A scan during an export started before it: export again so the acceptance is seen now.
          on: { QR_SCANNED: { target: 'refreshing', reenter: true } },
        },
        wait: { after: { untilRetry: 'refreshing' } },
      },
    },

    active: {
      entry: 'enterActive',
      invoke: {
        id: 'watch',
        src: 'watch',
        input: ({ context }) => ({ connectionId: context.connectionId }),
        onError: [
          { guard: { type: 'isFatal', params: errorParams }, target: '#account.error', actions: { type: 'recordFailure', params: errorParams } },
          { target: '#account.connecting.wait', actions: { type: 'recordFailure', params: errorParams } },
        ],
      },
      on: {
        CONNECTION_DROPPED: { target: '#account.connecting.wait', actions: { type: 'recordFailure', params: { error: DROPPED } } },
        SESSION_REVOKED: { target: '#account.error', actions: { type: 'setError', params: REVOKED } },
        UPDATE: { actions: 'emitUpdate' },
        // A send failed. Only connection-level codes move the machine; a flood wait or a
        // per-chat refusal belongs to that message and the delivery pipeline retries it.
        PLATFORM_ERROR: [
          {
            guard: { type: 'isConnectionFatal', params: errorParams },
            target: '#account.error',
            actions: { type: 'recordFailure', params: errorParams },
          },
          {
            guard: { type: 'isRetryable', params: errorParams },
            target: '#account.connecting.wait',
            actions: { type: 'recordFailure', params: errorParams },
          },
        ],
        RESUME: '#account.connecting',
      },
    },

    // Terminal until a person acts: RECONNECT (root) leaves it.
    error: {},

    stopped: {
      initial: 'idle',
      // Nothing the supervisor reports can pull a stopped connection back into `error`.
      on: { STOP: {}, BREAKER_OPEN: {}, MEMORY_EXCEEDED: {} },
      states: {
        // STOP: the session is kept; RECONNECT or LOGOUT (root) still work.
        idle: {},
        loggingOut: {
          initial: 'call',
          on: { LOGOUT: {}, RECONNECT: {} },
          states: {
            call: {
              tags: 'busy',
              invoke: {
                id: 'logOut',
                src: 'logOut',
                input: ({ context }) => ({ connectionId: context.connectionId }),
                onDone: { target: '#account.stopped.loggedOut', actions: 'clearError' },
                onError: [
                  // Already revoked or unregistered: logged out is what we wanted.
                  { guard: { type: 'isFatal', params: errorParams }, target: '#account.stopped.loggedOut', actions: 'clearError' },
                  { guard: { type: 'isFlood', params: errorParams }, target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
                  { guard: { type: 'logoutTriesLeft' }, target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
                  // Given up: error stays in context so the supervisor can log "logout unconfirmed".
                  { target: '#account.stopped.loggedOut', actions: [{ type: 'recordFailure', params: errorParams }, 'stopWaiting'] },
                ],
              },
              on: { RESUME: { target: 'call', reenter: true } },
            },
            wait: {
              after: { untilRetry: 'call' },
              on: { RESUME: { target: 'wait', reenter: true } },
            },
          },
        },
        loggedOut: { on: { LOGOUT: {}, RECONNECT: {} } },
      },
    },
  },
});

const profileOf = (output: SignInOutput | ExportQrOutput): Profile | undefined =>
  output.result === 'ok' ? output.profile : undefined;
const hintOf = (output: SignInOutput | ExportQrOutput): string | undefined =>
  output.result === 'password' ? output.hint : undefined;

export type AccountMachine = typeof accountMachine;
export type AccountSnapshot = SnapshotFrom<typeof accountMachine>;

export const statusOf = (snapshot: { value: unknown }): AccountStatus => topLevelState(snapshot) as AccountStatus;
