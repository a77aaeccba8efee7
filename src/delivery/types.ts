// The one seam between delivery and the connection actors (src/supervisor). Delivery decides when a
// message may go (pacing, retries, parking); the supervisor decides how (which actor, which client);
// the platform adapter says what its connections can take (src/platforms/adapter.ts).
import type { OutboundMessage, OutboundOperation, SendCapabilities } from '../platforms/adapter.ts';

export type Priority = 'high' | 'normal' | 'low';
export type { OutboundMessage, OutboundOperation, SendCapabilities };

export interface MessageSender {
  /**
   * Hands the message to the actor that owns its connection; resolves once the platform accepted it.
   * Rejects with AppError (src/errors.ts), read by category:
   * - rate-limited-until with retryAfter (s): that chat waits, other chats keep flowing; with scope
   *   'connection' every chat of the connection waits (a bot-wide or account-wide limit).
   * - quota-until with retryAfter (s): the connection's quota is spent; every chat waits until then.
   * - CIRCUIT_OPEN / CONNECTION_NOT_ACTIVE while the connection is not active: parked, re-tried later,
   *   never dropped.
   * - rejected, reauthorize, fatal: failed at once with that code.
   * - outcome-unknown: resent only where the platform drops duplicates (capabilities.resendSafe),
   *   else failed OUTCOME_UNKNOWN.
   * - anything else: retried with exponential backoff up to the retry limit.
   */
  send(msg: OutboundMessage): Promise<{ platformMessageId: string }>;
  /** Edits or deletes a sent message through the owning actor's driver; rejects as send() does. Absent: no operations. */
  operate?(op: OutboundOperation): Promise<void>;
  /** What the connection's platform kind can take; undefined when its actor does not run here. */
  capabilities(connectionId: string): SendProfile | undefined;
}

/** A connection's kind (for metrics) and what it can take. */
export interface SendProfile { kind: string; send: SendCapabilities }

/** Time source, injectable so that pacing tests run a minute of sends without waiting for it. */
export interface Clock {
  now(): number;
  /** resolves after ms, or early (without rejecting) when signal aborts */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
    }),
};
