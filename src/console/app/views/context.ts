import type { ApiClient } from '../api-client.ts';
import { ApiError } from '../api-client.ts';
import { type Actor, describeError } from '../error-text.ts';
import type { Chat, Connection } from '../types.ts';
import { t } from '../i18n/index.ts';

export type ToastKind = 'info' | 'success' | 'error';

// What every view may ask of the app shell. Views never talk to each other directly.
export interface Ctx {
  api: ApiClient;
  toast(kind: ToastKind, text: string): void;
  confirm(question: string, confirmLabel: string): Promise<boolean>;
  select(id: string | null): void;
  upsert(conn: Connection): void;
  remove(id: string): void;
  trackSent(messageId: string): void;
  // Messages name their chat by whatever was sent (our chat id, @name, numeric id): show a title when known.
  rememberChats(chats: Chat[]): void;
  chatLabel(ref: string): string;
  // A bot connection's errors say "the bot", an account's "the account".
  actorOf(connectionId: string): Actor;
}

// The one-line text for any failure: "CODE — sentence" for API errors, plus field details.
export const errorLine = (err: unknown, who: Actor = 'account'): string => {
  if (err instanceof ApiError) {
    const main = describeError({ code: err.code, message: err.message, retryAfter: err.retryAfter }, Date.now(), who);
    const details = err.details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join('; ');
    return details ? `${main} (${details})` : main;
  }
  return t('common.unexpected', { message: err instanceof Error ? err.message : String(err) });
};

export const connectionName = (c: Connection): string =>
  c.displayName || (c.username ? `@${c.username}` : '') || c.phone
  || (c.platform !== 'telegram' ? t('conn.name.platform', { platform: platformName(c.platform) })
    : t(c.kind === 'bot' ? 'conn.name.bot' : c.login?.method === 'qr' ? 'conn.name.qr' : 'conn.name.new'));

// Platform names are brands: the same in every language.
const brands: Record<string, string> = { telegram: 'Telegram', instagram: 'Instagram', threads: 'Threads', youtube: 'YouTube', tiktok: 'TikTok', whatsapp: 'WhatsApp' };
export const platformName = (platform: string): string => brands[platform] ?? platform;

/** "Bot", "User account", "Instagram account", "WhatsApp business number". */
export const kindLabel = (c: Connection): string => {
  if (c.platform === 'telegram') return c.kind === 'bot' ? t('conn.kind.bot') : t('conn.kind.user');
  return t(c.kind === 'business-number' ? 'conn.kind.number' : 'conn.kind.account', { platform: platformName(c.platform) });
};

// A refusal that names a wait (429 RATE_LIMITED or TG_API_429, a 503 with Retry-After) counts down
// each second and disappears at zero, so "try again in 13 s" is never left standing once it is true.
const countdowns = new WeakMap<HTMLElement, number>();
export const showProblem = (el: HTMLElement, err: unknown, who: Actor = 'account'): void => {
  window.clearInterval(countdowns.get(el));
  countdowns.delete(el);
  if (err === null || err === undefined) {
    el.textContent = '';
    return;
  }
  if (!(err instanceof ApiError) || !err.retryAfter || err.retryAfter <= 0) {
    el.textContent = errorLine(err, who);
    return;
  }
  const until = Date.now() + err.retryAfter * 1000;
  const draw = (): void => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      window.clearInterval(countdowns.get(el));
      countdowns.delete(el);
      el.textContent = '';
      return;
    }
    el.textContent = errorLine(new ApiError(err.status, err.code, err.message, left, err.details), who);
  };
  draw();
  countdowns.set(el, window.setInterval(draw, 1000));
};
