// A Telegram bot over the Bot API as a pure state machine.
//
// STATUS: the top-level state is the API status: connecting · active · error · stopped (`statusOf`).
//
// I/O SLOTS (src/ supplies them with `.provide({ actors })`; the placeholders throw). The token
// never enters context, events or inputs: the provided actors look it up by connectionId.
//   verify ({connectionId}) → { profile }   getMe; an unknown token fails with TG_BOT_TOKEN_INVALID
//   watch  (callback, in active) sends TOKEN_REVOKED (getUpdates answered 401), CONNECTION_DROPPED,
//          UPDATE {update}; UPDATE is re-emitted as `update` (actor.on('update')).
// Errors are objects with a string `code`, optional `retryable` and `retryAfter` (s); anything
// else counts as retryable.
//
// EVENTS from the API/supervisor: LOGOUT, STOP, RECONNECT, BREAKER_OPEN {retryAt}, MEMORY_EXCEEDED,
// PLATFORM_ERROR {error}, RESUME. `verify` in flight carries the tag 'busy'. LOGOUT is STOP for a bot: the Bot API's logOut moves the bot off
// the cloud server and locks the token out of it for 10 minutes; a token is revoked in BotFather.
//
// RESTORE RULE (same as the account machine):
//   persist:  toStoredSnapshot(actor.getPersistedSnapshot())   (children dropped, see persistence.ts)
//   restore:  createActor(botMachine.provide(impl), { snapshot: stored, input }).start()
//             then immediately actor.send({ type: 'RESUME' }).
//   What RESUME does:
//     connecting.wait    → waits the REMAINING time until context.retryAt, then verifies
//     connecting.verify  → verifies again (getMe is read-only)
//     active             → connecting: verifies, then restarts the watcher
//     error, stopped     → nothing
import { assign, emit, fromCallback, fromPromise, setup, type SnapshotFrom } from 'xstate';
import { clockOf, remainingMs, resolveBackoff, type BackoffConfig } from './backoff.ts';
import { applyFailure, failureKind, isConnectionFatal, type ErrorInfo } from './failure.ts';
import { topLevelState } from './persistence.ts';

// Bump when states or context change shape (stored next to each snapshot).
export const MACHINE_VERSION = 1;

export type BotStatus = 'connecting' | 'active' | 'error' | 'stopped';

export interface BotProfile {
  platformUserId: string;
  displayName: string;
  username?: string;
}

export interface BotInput {
  connectionId: string;
  backoff?: Partial<BackoffConfig>;
}

export interface BotContext {
  connectionId: string;
  backoff: BackoffConfig;
  attempt: number;
  retryAt: number | null;
  error: ErrorInfo | null;
  profile: BotProfile | null;
  lastActiveAt: number | null;
}

export type BotEvent =
  | { type: 'TOKEN_REVOKED' }
  | { type: 'CONNECTION_DROPPED' }
  | { type: 'UPDATE'; update: unknown }
  | { type: 'LOGOUT' }
  | { type: 'STOP' }
  | { type: 'RECONNECT' }
  | { type: 'BREAKER_OPEN'; retryAt: number }
  | { type: 'MEMORY_EXCEEDED' }
  | { type: 'PLATFORM_ERROR'; error: unknown }
  | { type: 'RESUME' };

export type BotWatchEvent = Extract<BotEvent, { type: 'TOKEN_REVOKED' | 'CONNECTION_DROPPED' | 'UPDATE' }>;
export type BotEmitted = { type: 'update'; connectionId: string; update: unknown };

export interface BotStepInput {
  connectionId: string;
}
export interface VerifyOutput {
  profile: BotProfile;
}

const DROPPED = { code: 'TG_UNAVAILABLE', message: 'Bot API connection dropped', retryable: true };
const TOKEN_INVALID: ErrorInfo = { code: 'TG_BOT_TOKEN_INVALID', message: 'the bot token was revoked or is not valid' };
const MEMORY: ErrorInfo = { code: 'MEMORY_BUDGET_EXCEEDED', message: 'the connection exceeded its memory budget' };

const errorParams = ({ event }: { event: { error: unknown } }) => ({ error: event.error });

export const botMachine = setup({
  types: {
    context: {} as BotContext,
    events: {} as BotEvent,
    input: {} as BotInput,
    emitted: {} as BotEmitted,
  },
  actors: {
    verify: fromPromise<VerifyOutput, BotStepInput>(async () => {
      throw new Error("bot machine: I/O slot 'verify' not provided");
    }),
    watch: fromCallback<BotEvent, BotStepInput>(() => {
      throw new Error("bot machine: I/O slot 'watch' not provided");
    }),
  },
  delays: {
    untilRetry: ({ context, system }) => remainingMs(context.retryAt, clockOf(system).now()),
  },
  guards: {
    isFatal: (_, params: { error: unknown }) => {
      const kind = failureKind(params.error);
      return kind === 'fatal' || kind === 'user';
    },
    isRetryable: (_, params: { error: unknown }) => failureKind(params.error) === 'retry',
    isConnectionFatal: (_, params: { error: unknown }) => isConnectionFatal(params.error),
  },
  actions: {
    recordFailure: assign(({ context, system }, params: { error: unknown }) =>
      applyFailure(context, params.error, context.backoff, clockOf(system)),
    ),
    setError: assign((_, params: ErrorInfo) => ({ error: params, retryAt: null })),
    clearError: assign({ error: null, retryAt: null }),
    resetRetry: assign({ attempt: 0, error: null, retryAt: null }),
    enterActive: assign(({ system }) => ({ attempt: 0, retryAt: null, error: null, lastActiveAt: clockOf(system).now() })),
    emitUpdate: emit(({ context, event }) => ({
      type: 'update' as const,
      connectionId: context.connectionId,
      update: event.type === 'UPDATE' ? event.update : undefined,
    })),
  },
}).createMachine({
  id: 'bot',
  context: ({ input }) => ({
    connectionId: input.connectionId,
    backoff: resolveBackoff(input.backoff),
    attempt: 0,
    retryAt: null,
    error: null,
    profile: null,
    lastActiveAt: null,
  }),
  initial: 'connecting',
  // Supervisor events valid in every state except `stopped`, which overrides them.
  on: {
    STOP: { target: '#bot.stopped', actions: 'clearError' },
    LOGOUT: { target: '#bot.stopped', actions: 'clearError' },
    RECONNECT: { target: '#bot.connecting', actions: 'resetRetry' },
    BREAKER_OPEN: {
      target: '#bot.error',
      actions: { type: 'setError', params: ({ event }) => ({ code: 'CIRCUIT_OPEN', message: 'too many failures; retrying later', retryAt: event.retryAt }) },
    },
    MEMORY_EXCEEDED: { target: '#bot.error', actions: { type: 'setError', params: MEMORY } },
  },
  states: {
    connecting: {
      initial: 'verify',
      states: {
        verify: {
          tags: 'busy',
          invoke: {
            id: 'verify',
            src: 'verify',
            input: ({ context }) => ({ connectionId: context.connectionId }),
            onDone: { target: '#bot.active', actions: assign({ profile: ({ event }) => event.output.profile }) },
            onError: [
              // TG_BOT_TOKEN_INVALID is terminal: a wrong token never starts working by retrying.
              { guard: { type: 'isFatal', params: errorParams }, target: '#bot.error', actions: { type: 'recordFailure', params: errorParams } },
              { target: 'wait', actions: { type: 'recordFailure', params: errorParams } },
            ],
          },
          on: { RESUME: { target: 'verify', reenter: true } },
        },
        wait: {
          after: { untilRetry: 'verify' },
          on: { RESUME: { target: 'wait', reenter: true } },
        },
      },
    },

    active: {
      entry: 'enterActive',
      invoke: {
        id: 'watch',
        src: 'watch',
        input: ({ context }) => ({ connectionId: context.connectionId }),
        onError: [
          { guard: { type: 'isFatal', params: errorParams }, target: '#bot.error', actions: { type: 'recordFailure', params: errorParams } },
          { target: '#bot.connecting.wait', actions: { type: 'recordFailure', params: errorParams } },
        ],
      },
      on: {
        TOKEN_REVOKED: { target: '#bot.error', actions: { type: 'setError', params: TOKEN_INVALID } },
        CONNECTION_DROPPED: { target: '#bot.connecting.wait', actions: { type: 'recordFailure', params: { error: DROPPED } } },
        UPDATE: { actions: 'emitUpdate' },
        // A send failed: only connection-level codes move the machine (see account.machine.ts).
        PLATFORM_ERROR: [
          { guard: { type: 'isConnectionFatal', params: errorParams }, target: '#bot.error', actions: { type: 'recordFailure', params: errorParams } },
          { guard: { type: 'isRetryable', params: errorParams }, target: '#bot.connecting.wait', actions: { type: 'recordFailure', params: errorParams } },
        ],
        RESUME: '#bot.connecting',
      },
    },

    // Terminal until a person acts: RECONNECT (root) leaves it.
    error: {},

    // RECONNECT (root) starts it again; nothing the supervisor reports moves it to `error`.
    stopped: {
      on: { STOP: {}, LOGOUT: {}, BREAKER_OPEN: {}, MEMORY_EXCEEDED: {} },
    },
  },
});

export type BotMachine = typeof botMachine;
export type BotSnapshot = SnapshotFrom<typeof botMachine>;

export const statusOf = (snapshot: { value: unknown }): BotStatus => topLevelState(snapshot) as BotStatus;
