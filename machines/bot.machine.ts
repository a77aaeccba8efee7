// A bot that logs in with a token (Telegram's Bot API, a WhatsApp business number's system-user
// token), as the connection lifecycle (connection.ts) with no login step of its own: connect checks
// the token (getMe) and answers `authorized: true` with the profile, or fails (an invalid token is
// category fatal → error). The token never enters context, events or inputs: the provided actors look
// it up by connectionId. Logging out is forgetting the token (the driver's logOut may do nothing):
// the Bot API's logOut moves the bot off the cloud server and locks the token out for 10 minutes.
//
// STATUS: connecting · active · error · stopped. RESUME is the lifecycle's (connection.ts).
import type { AnyStateMachine, SnapshotFrom } from 'xstate';
import { connectionMachine, type LifecycleErrors, type Profile } from './connection.ts';
import { topLevelState } from './persistence.ts';

// 2: built on the shared lifecycle ('verify' became 'connecting.connect', stopped became compound);
// migrateBotSnapshot reads version 1.
export const MACHINE_VERSION = 2;

export type BotStatus = 'connecting' | 'active' | 'error' | 'stopped';
export type { Profile };

export interface BotInput {
  connectionId: string;
  backoff?: { baseMs?: number; capMs?: number };
}

const ID = 'bot';

/** The bot machine in the platform's words for the failures it notices itself. */
export function botMachine(errors: LifecycleErrors): AnyStateMachine {
  return connectionMachine({
    id: ID,
    errors,
    // Logging a bot out forgets its token here; the token still works, so RECONNECT may start it again.
    reconnectAfterLogout: true,
    // connect fails rather than answering unauthorised for a bot; should it answer so, the token is no good.
    unauthorized: [{ target: `#${ID}.error`, actions: { type: 'setError', params: { code: errors.revoked.code, message: errors.revoked.message } } }],
  });
}

/**
 * A version-1 snapshot (before the shared lifecycle) in version 2's shape: the states were renamed,
 * context is the same. Undefined when the value is not one version 1 had.
 */
export function migrateBotSnapshot(stored: Record<string, unknown>): Record<string, unknown> | undefined {
  const value = stored.value;
  const renamed = value === 'stopped' ? { stopped: 'idle' }
    : value === 'active' || value === 'error' ? value
      : isObject(value) && value.connecting === 'verify' ? { connecting: 'connect' }
        : isObject(value) && value.connecting === 'wait' ? { connecting: 'wait' }
          : undefined;
  return renamed === undefined ? undefined : { ...stored, value: renamed, context: { login: 'session', ...(stored.context as object) } };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export type BotSnapshot = SnapshotFrom<ReturnType<typeof botMachine>>;

export const statusOf = (snapshot: { value: unknown }): BotStatus => topLevelState(snapshot) as BotStatus;
