// The one seam between delivery and the connection actors (src/supervisor). Delivery decides when a
// message may go (pacing, retries, parking); the supervisor decides how (which actor, which client).
import { AppError } from '../errors.ts';

export type Priority = 'high' | 'normal' | 'low';
export type ConnectionKind = 'user' | 'bot';

export interface OutboundMessage {
  id: string;
  owner: string;
  connectionId: string;
  /** as stored: the platform chat id once resolved, else @username, numeric id or our chat uuid */
  chat: string;
  text: string;
  parseMode?: 'html' | 'markdown';
  silent: boolean;
  replyTo?: string;
  priority: Priority;
  /** 1 on the first try; the user-account sender passes randomIdFor(id) on every attempt */
  attempts: number;
  createdAt: Date;
}

export interface MessageSender {
  /**
   * Hands the message to the actor that owns its connection; resolves once the platform accepted it.
   * Rejects with AppError (src/errors.ts):
   * - TG_API_429 with retryAfter (s): that chat waits, other chats keep flowing. For a limit that
   *   covers the whole connection (bot-wide 30/s, account-wide flood wait) throw connectionFloodWait().
   * - CIRCUIT_OPEN / CONNECTION_NOT_ACTIVE while the connection is not active: parked, re-tried later,
   *   never dropped.
   * - permanent codes (err.retryable === false, e.g. TG_CHAT_WRITE_FORBIDDEN, TG_SESSION_EXPIRED):
   *   failed at once with that code.
   * - anything else: retried with exponential backoff up to the retry limit.
   * For bots, reject with a retryable code only when the platform surely did not take the message
   * (connect refused, HTTP 5xx/429 answer); a timeout after the request left is ambiguous: prefer
   * TG_UNAVAILABLE only if you accept a possible duplicate, else a permanent code.
   */
  send(msg: OutboundMessage): Promise<{ platformMessageId: string }>;
  /** for pacing limits and metrics; undefined when the connection is unknown (message then parks) */
  kindOf(connectionId: string): ConnectionKind | undefined;
}

export interface PacingOptions {
  /** Telegram: about 1 message per second into one chat */
  chatPerSecond: number;
  /** Telegram: at most 20 messages per minute into one group (chat ids starting with "-") */
  groupPerMinute: number;
  /** Bot API: about 30 messages per second per bot over all chats */
  botPerSecond: number;
}

export const defaultPacing: PacingOptions = { chatPerSecond: 1, groupPerMinute: 20, botPerSecond: 30 };

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

const floodScopePath = 'floodScope';

/** A flood wait that pauses every chat of the connection, not only the one the message went to. */
export function connectionFloodWait(retryAfter: number, message = 'flood wait for the whole connection'): AppError {
  return new AppError('TG_API_429', message, { retryAfter, details: [{ path: floodScopePath, message: 'connection' }] });
}

export const isConnectionWideFlood = (err: AppError): boolean =>
  err.details?.some((d) => d.path === floodScopePath && d.message === 'connection') ?? false;
