// The connection lifecycle every platform shares, as a machine factory: connecting (connect, backoff
// wait), active (watching the link, reporting updates), error, stopped (idle, logging out, logged
// out), the supervisor's root events and the failure handling. A platform extends it with its login
// part — extra states (awaiting-code, awaiting-authorization, …), extra `connecting` substates (send a
// code, export a QR token) and where an unauthorised connect goes — and its own slots.
//
// STATUS: the top-level state is the API status (`topLevelState`).
//
// SLOTS every lifecycle has (src/ provides them; the placeholders throw). Inputs are
// `{ connectionId }`; errors are objects with a string `code` and a `category` (see failure.ts).
//   connect (promise)  → { authorized, profile? }   idempotent: reuses a live client
//   watch   (callback, in active and where a login part invokes it) sends CONNECTION_DROPPED {error?},
//                      REVOKED {error?}, UPDATE {update}, and any platform event; UPDATE is re-emitted
//                      as `update` (actor.on('update')).
//   logOut  (promise)  → void     at the platform (a no-op where logging out means forgetting)
//
// EVENTS from the supervisor: STOP {error?} (the reason the stopped connection shows, e.g. a withdrawn
// consent), LOGOUT, RECONNECT, BREAKER_OPEN {retryAt}, MEMORY_EXCEEDED, PLATFORM_ERROR {error} (a send
// failed in a way that concerns the connection), RESUME (sent once after a restore). States with a
// slot call in flight carry the tag 'busy'.
//
// RESTORE RULE: persist `toStoredSnapshot(actor.getPersistedSnapshot())` (children dropped), restore
// with `createActor(machine, { snapshot, input }).start()` then `send({ type: 'RESUME' })`. What
// RESUME does in the lifecycle's states:
//   connecting.connect → connects again (connect is idempotent)
//   connecting.wait    → waits the REMAINING time until context.retryAt, then connects
//   active             → connecting: reconnects from the saved credentials, never a new login
//   error, stopped.idle, stopped.loggedOut → nothing
//   stopped.loggingOut.call → logOut again (idempotent); .wait → keeps waiting until retryAt
// A login part documents what RESUME does in its own states.
//
// BACKOFF: retryable failures wait random() × min(cap, base × 2^attempt) (backoff.ts) with `attempt`
// and `retryAt` in context and `error` {code, message, retryAt} visible to the API. Rate limits wait
// exactly retryAfter and never count as attempts. The machine retries forever; the supervisor's
// breaker stops it with BREAKER_OPEN and frees it with RECONNECT.
import { assign, emit, fromCallback, fromPromise, setup, type AnyStateMachine, type UnknownActorLogic } from 'xstate';
import { clockOf, remainingMs, resolveBackoff, type BackoffConfig } from './backoff.ts';
import { applyFailure, failureKind, isConnectionFatal, type ErrorInfo, type Failure } from './failure.ts';

export interface Profile {
  platformUserId: string;
  displayName: string;
  username?: string;
}

export interface ConnectOutput {
  authorized: boolean;
  profile?: Profile;
}

export interface StepInput {
  connectionId: string;
}

export interface LifecycleContext {
  connectionId: string;
  // The login method while logging in; 'session' once the connection has been active: every later
  // connect is a reconnect with the saved credentials, never a new login.
  login: string;
  backoff: BackoffConfig;
  attempt: number;
  retryAt: number | null;
  error: ErrorInfo | null;
  profile: Profile | null;
  lastActiveAt: number | null;
}

export interface LifecycleInput {
  connectionId: string;
  login?: string;
  backoff?: Partial<BackoffConfig>;
}

export type LifecycleEvent =
  | { type: 'CONNECTION_DROPPED'; error?: unknown }
  | { type: 'REVOKED'; error?: unknown }
  | { type: 'UPDATE'; update: unknown }
  | { type: 'LOGOUT' }
  | { type: 'STOP'; error?: ErrorInfo }
  | { type: 'RECONNECT' }
  | { type: 'BREAKER_OPEN'; retryAt: number }
  | { type: 'MEMORY_EXCEEDED' }
  | { type: 'PLATFORM_ERROR'; error: unknown }
  | { type: 'RESUME' };

export type LifecycleEmitted = { type: 'update'; connectionId: string; update: unknown };

/** The platform's wording of the failures the lifecycle itself notices (no code of its own here). */
export interface LifecycleErrors {
  /** The watcher reported a dropped link without an error of its own (category retry). */
  dropped: Failure;
  /** The watcher reported revoked credentials without an error of its own (category reauthorize). */
  revoked: Failure;
}

// Core codes, shared by every platform (src/errors.ts).
const MEMORY: ErrorInfo = { code: 'MEMORY_BUDGET_EXCEEDED', message: 'the connection exceeded its memory budget' };

// A logout that keeps failing on the network is given up after 3 tries: the supervisor deletes the
// secrets anyway, and platforms expire unused sessions on their own.
const LOGOUT_TRIES = 3;

type Config = Record<string, any>;

export interface LoginPart {
  /** Machine id, also the prefix of state ids (`#account.active`). */
  id: string;
  errors: LifecycleErrors;
  /** The platform's own slots (promise or callback actors) beside connect, watch and logOut. */
  actors?: Record<string, UnknownActorLogic>;
  guards?: Record<string, (...args: any[]) => boolean>;
  actions?: Record<string, any>;
  delays?: Record<string, (...args: any[]) => number>;
  /** Context fields of the login part, initialised from the input. */
  context?: (input: any) => Record<string, unknown>;
  /** connect answered `authorized: false`: where to go (a login step, or error for a saved session). */
  unauthorized: Config[];
  /** Substates of `connecting` besides connect and wait (e.g. sendCode, exportQr). */
  connecting?: Record<string, Config>;
  /** Top-level login states (awaiting-code, awaiting-authorization, …). */
  states?: Record<string, Config>;
  /** Context reset on entering active, beside the lifecycle's own (retry state, lastActiveAt, login). */
  onActive?: Record<string, unknown>;
  /** Actions run by STOP, LOGOUT, RECONNECT and the breaker besides the lifecycle's (e.g. drop a pending code). */
  cleanup?: string[];
  /** Extra transitions of `active` (platform events from the watcher, token refresh). */
  active?: Config;
  /**
   * After a logout, RECONNECT is ignored by default (the session is gone at the platform). A kind
   * whose logout only forgets locally (a bot's token stays valid) lets RECONNECT start it again.
   */
  reconnectAfterLogout?: boolean;
}

export const errorParams = ({ event }: { event: { error: unknown } }) => ({ error: event.error });
/** The failure an event carries, or the platform's default wording for it. */
const eventError = (fallback: Failure) => ({ event }: { event: { error?: unknown } }) => ({ error: event.error ?? fallback });

/** onError of a slot outside the login steps: fatal → error, anything else → back off in `target`. */
export const failTo = (id: string, target: string, extra: unknown[] = []) => [
  { guard: { type: 'isFatal', params: errorParams }, target: `#${id}.error`, actions: [{ type: 'recordFailure', params: errorParams }, ...extra] },
  { target, actions: { type: 'recordFailure', params: errorParams } },
];

const notProvided = (id: string, slot: string) => async (): Promise<never> => {
  throw new Error(`${id} machine: I/O slot '${slot}' not provided`);
};

export function connectionMachine(part: LoginPart): AnyStateMachine {
  const { id } = part;
  const cleanup = part.cleanup ?? [];
  return setup({
    types: {} as { context: LifecycleContext & Record<string, any>; events: LifecycleEvent | { type: string; [k: string]: unknown }; input: LifecycleInput; emitted: LifecycleEmitted },
    actors: {
      connect: fromPromise<ConnectOutput, StepInput>(notProvided(id, 'connect')),
      logOut: fromPromise<void, StepInput>(notProvided(id, 'logOut')),
      watch: fromCallback<any, StepInput>(() => {
        throw new Error(`${id} machine: I/O slot 'watch' not provided`);
      }),
      ...part.actors,
    } as Record<string, UnknownActorLogic>,
    delays: {
      untilRetry: ({ context, system }: any) => remainingMs(context.retryAt, clockOf(system).now()),
      ...part.delays,
    },
    guards: {
      // In steps that are not the user's to repeat (connect, a refresh), a rejection is as final as fatal.
      isFatal: (_: unknown, params: { error: unknown }) => {
        const kind = failureKind(params.error);
        return kind === 'fatal' || kind === 'user';
      },
      isUserError: (_: unknown, params: { error: unknown }) => failureKind(params.error) === 'user',
      isFlood: (_: unknown, params: { error: unknown }) => failureKind(params.error) === 'flood',
      isRetryable: (_: unknown, params: { error: unknown }) => failureKind(params.error) === 'retry',
      isConnectionFatal: (_: unknown, params: { error: unknown }) => isConnectionFatal(params.error),
      logoutTriesLeft: ({ context }: { context: LifecycleContext }) => context.attempt + 1 < LOGOUT_TRIES,
      ...part.guards,
    },
    actions: {
      recordFailure: assign(({ context, system }: any, params: { error: unknown }) => applyFailure(context, params.error, context.backoff, clockOf(system))),
      setError: assign((_: unknown, params: ErrorInfo) => ({ error: params, retryAt: null })),
      clearError: assign({ error: null, retryAt: null }),
      stopWith: assign((_: unknown, params: { error: ErrorInfo | null }) => ({ error: params.error, retryAt: null })),
      resetRetry: assign({ attempt: 0, error: null, retryAt: null }),
      // A stable waiting point reached: the next failure starts the schedule from the base delay again.
      settled: assign({ attempt: 0, error: null, retryAt: null }),
      setProfile: assign((_: unknown, params: { profile: Profile | undefined }) => (params.profile ? { profile: params.profile } : {})),
      stopWaiting: assign(({ context }: any) => ({
        retryAt: null,
        error: context.error === null ? null : { code: context.error.code, message: context.error.message },
      })),
      enterActive: assign(({ system }: any) => ({
        ...part.onActive,
        login: 'session',
        attempt: 0,
        retryAt: null,
        error: null,
        lastActiveAt: clockOf(system).now(),
      })),
      emitUpdate: emit(({ context, event }: any) => ({
        type: 'update' as const,
        connectionId: context.connectionId,
        update: event.type === 'UPDATE' ? event.update : undefined,
      })),
      ...part.actions,
    },
  } as any).createMachine({
    id,
    context: ({ input }: { input: LifecycleInput }) => ({
      connectionId: input.connectionId,
      login: input.login ?? 'session',
      backoff: resolveBackoff(input.backoff),
      attempt: 0,
      retryAt: null,
      error: null,
      profile: null,
      lastActiveAt: null,
      ...part.context?.(input),
    }),
    initial: 'connecting',
    // Supervisor events valid in every state except `stopped`, which overrides them.
    on: {
      STOP: { target: `#${id}.stopped.idle`, actions: [{ type: 'stopWith', params: ({ event }: any) => ({ error: event.error ?? null }) }, ...cleanup] },
      LOGOUT: { target: `#${id}.stopped.loggingOut`, actions: ['resetRetry', ...cleanup] },
      RECONNECT: { target: `#${id}.connecting`, actions: ['resetRetry', ...cleanup] },
      BREAKER_OPEN: {
        target: `#${id}.error`,
        actions: [
          // The last failure stays in the message: "too many failures" alone hides why (Telegram
          // unreachable, credentials refused) from whoever reads the connection.
          {
            type: 'setError',
            params: ({ context, event }: any) => ({
              code: 'CIRCUIT_OPEN', retryAt: event.retryAt,
              message: context.error ? `too many failures (last: ${context.error.code}: ${context.error.message}); retrying later` : 'too many failures; retrying later',
            }),
          },
          ...cleanup,
        ],
      },
      MEMORY_EXCEEDED: { target: `#${id}.error`, actions: [{ type: 'setError', params: MEMORY }, ...cleanup] },
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
              input: ({ context }: any) => ({ connectionId: context.connectionId }),
              onDone: [
                {
                  guard: ({ event }: any) => event.output.authorized,
                  target: `#${id}.active`,
                  actions: { type: 'setProfile', params: ({ event }: any) => ({ profile: event.output.profile }) },
                },
                ...part.unauthorized,
              ],
              onError: failTo(id, 'wait'),
            },
            on: { RESUME: { target: 'connect', reenter: true } },
          },
          ...part.connecting,
          // Backoff and rate-limit waits. Everything restarts at connect: connect is idempotent and
          // decides again whether a login step is needed.
          wait: {
            after: { untilRetry: 'connect' },
            on: { RESUME: { target: 'wait', reenter: true } },
          },
        },
      },

      ...Object.fromEntries(Object.entries(part.states ?? {}).filter(([k]) => k !== 'error')),

      active: {
        entry: 'enterActive',
        invoke: {
          id: 'watch',
          src: 'watch',
          input: ({ context }: any) => ({ connectionId: context.connectionId }),
          onError: failTo(id, `#${id}.connecting.wait`),
        },
        on: {
          CONNECTION_DROPPED: { target: `#${id}.connecting.wait`, actions: { type: 'recordFailure', params: eventError(part.errors.dropped) } },
          REVOKED: { target: `#${id}.error`, actions: { type: 'recordFailure', params: eventError(part.errors.revoked) } },
          UPDATE: { actions: 'emitUpdate' },
          // A send failed in a way that concerns the connection (the supervisor sends only those):
          // revoked or unusable → error; a link without answers → reconnect with backoff.
          PLATFORM_ERROR: [
            { guard: { type: 'isConnectionFatal', params: errorParams }, target: `#${id}.error`, actions: { type: 'recordFailure', params: errorParams } },
            { guard: { type: 'isRetryable', params: errorParams }, target: `#${id}.connecting.wait`, actions: { type: 'recordFailure', params: errorParams } },
          ],
          RESUME: `#${id}.connecting`,
          ...part.active?.on,
        },
      },

      // Terminal until a person acts: RECONNECT (root) leaves it; a login part may add ways out.
      error: part.states?.error ?? {},

      stopped: {
        initial: 'idle',
        // Nothing the supervisor reports can pull a stopped connection back into `error`.
        on: { STOP: {}, BREAKER_OPEN: {}, MEMORY_EXCEEDED: {} },
        states: {
          // STOP: the credentials are kept; RECONNECT or LOGOUT (root) still work.
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
                  input: ({ context }: any) => ({ connectionId: context.connectionId }),
                  onDone: { target: `#${id}.stopped.loggedOut`, actions: 'clearError' },
                  onError: [
                    // Already revoked or unregistered: logged out is what we wanted.
                    { guard: { type: 'isFatal', params: errorParams }, target: `#${id}.stopped.loggedOut`, actions: 'clearError' },
                    { guard: { type: 'isFlood', params: errorParams }, target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
                    { guard: { type: 'logoutTriesLeft' }, target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
                    // Given up: the error stays in context so the supervisor can log "logout unconfirmed".
                    { target: `#${id}.stopped.loggedOut`, actions: [{ type: 'recordFailure', params: errorParams }, 'stopWaiting'] },
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
          loggedOut: { on: part.reconnectAfterLogout ? { LOGOUT: {} } : { LOGOUT: {}, RECONNECT: {} } },
        },
      },
    },
  } as any);
}
