import { fromCallback, fromPromise, type AnyStateMachine } from 'xstate';
import type { ConnectOutput, StepInput } from '../../machines/connection.ts';
import { oauthMachine } from '../../machines/oauth.machine.ts';
import type { Driver } from './adapter.ts';

// What every OAuth kind (YouTube, TikTok, Instagram, Threads) shares: the oauth machine with its three slots provided, and
// its input from the row (the authorize URL the connection service stored at creation).

export interface OAuthSlots {
  connect(): Promise<ConnectOutput>;
  logOut(): Promise<void>;
  /**
   * While active: YouTube and TikTok watch nothing; Instagram and Threads check their token's refresh
   * here (sendBack REVOKED when access is gone). Returns its cleanup, if it holds a timer.
   */
  watch(sendBack: (e: { type: string; error?: unknown }) => void): void | (() => void);
}

const errors = {
  dropped: { code: 'PLATFORM_UNAVAILABLE', message: 'the platform did not answer', category: 'retry' as const },
  revoked: { code: 'PLATFORM_AUTH_REVOKED', message: 'access was revoked at the platform: authorize again', category: 'reauthorize' as const },
  denied: { code: 'PLATFORM_AUTH_DENIED', message: 'consent was declined at the platform' },
};

export function providedOAuthMachine(slotsOf: (connectionId: string) => Driver['slots']): AnyStateMachine {
  const of = (id: string) => slotsOf(id) as unknown as OAuthSlots;
  return oauthMachine(errors).provide({
    actors: {
      connect: fromPromise<ConnectOutput, StepInput>(({ input }) => of(input.connectionId).connect()),
      logOut: fromPromise<void, StepInput>(({ input }) => of(input.connectionId).logOut()),
      watch: fromCallback<any, StepInput>(({ input, sendBack }) => of(input.connectionId).watch(sendBack as (e: { type: string; error?: unknown }) => void) ?? undefined),
    },
  });
}

export function oauthInput(row: { id: string; login: Record<string, unknown> | null }, backoff: { baseMs: number; capMs: number }): unknown {
  const url = row.login?.authorizeUrl;
  return { connectionId: row.id, login: 'oauth', backoff, ...(typeof url === 'string' ? { authorizeUrl: url } : {}) };
}
