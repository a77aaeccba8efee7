// An OAuth account (YouTube, TikTok; API.md "OAuth platforms") on the shared lifecycle
// (connection.ts). connect answers `authorized: false` until the callback stored tokens, so a new
// connection waits in `awaiting-authorization` with the authorize URL in context; the callback sends
// RECONNECT (root) and connect finds the tokens. A denied consent (DENIED) goes to `error`.
// AUTHORIZE {url} (POST …/reauthorize) hands out a new URL from `error` or while waiting. The tokens
// never enter context: the driver reads them from the connection's secrets.
//
// STATUS: connecting · awaiting-authorization · active · error · stopped.
// RESUME in awaiting-authorization: stays (the state row and its URL outlive a restart).
import type { AnyStateMachine } from 'xstate';
import { assign } from 'xstate';
import { connectionMachine, type LifecycleErrors } from './connection.ts';

export const MACHINE_VERSION = 1;

export interface OAuthInput {
  connectionId: string;
  login?: string;
  authorizeUrl?: string;
  backoff?: { baseMs?: number; capMs?: number };
}

const ID = 'oauth';

export function oauthMachine(errors: LifecycleErrors & { denied: { code: string; message: string } }): AnyStateMachine {
  const toAwaiting = {
    target: `#${ID}.awaiting-authorization`,
    actions: [assign(({ event }: any) => ({ authorizeUrl: event.url, login: 'oauth', error: null, retryAt: null }))],
  };
  return connectionMachine({
    id: ID,
    errors,
    context: (input: OAuthInput) => ({ authorizeUrl: input.authorizeUrl ?? null }),
    // connect found no tokens: a person has to authorize (a saved session that lost its tokens too).
    unauthorized: [{ target: `#${ID}.awaiting-authorization` }],
    onActive: { authorizeUrl: null },
    states: {
      'awaiting-authorization': {
        on: {
          DENIED: { target: `#${ID}.error`, actions: { type: 'setError', params: errors.denied } },
          AUTHORIZE: toAwaiting,
          RESUME: {},
        },
      },
      error: { on: { AUTHORIZE: toAwaiting } },
    },
  });
}
