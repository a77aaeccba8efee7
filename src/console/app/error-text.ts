import { t, tMaybe } from './i18n/index.ts';
import type { ErrorInfo } from './types.ts';

// One sentence per error code, from the language's catalogue (`error.CODE`; `error.CODE.wait` when
// the answer said how long to wait). A code the catalogue does not know keeps the server's message.
/** Who acts in the chat: a bot connection is not "the account". */
export type Actor = 'account' | 'bot';

// Seconds to wait: `retryAfter` when the answer carried it, else the distance to `retryAt`.
const waitSeconds = (err: ErrorInfo, now: number): number | undefined => {
  if (typeof err.retryAfter === 'number') return Math.max(0, Math.ceil(err.retryAfter));
  if (err.retryAt) {
    const at = Date.parse(err.retryAt);
    if (!Number.isNaN(at)) return Math.max(0, Math.ceil((at - now) / 1000));
  }
  return undefined;
};

// "TG_API_429 — Telegram asks to wait 17 s". Plain text: callers put it in textContent.
export const describeError = (err: ErrorInfo, now: number = Date.now(), who: Actor = 'account'): string => {
  const s = waitSeconds(err, now);
  const w = t(who === 'bot' ? 'who.bot' : 'who.account');
  const params = { s: s ?? '', who: w, Who: w.charAt(0).toUpperCase() + w.slice(1) };
  const sentence = (s !== undefined ? tMaybe(`error.${err.code}.wait`, params) : undefined) ?? tMaybe(`error.${err.code}`, params);
  return `${err.code} — ${sentence ?? err.message}`;
};
