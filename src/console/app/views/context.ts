import type { ApiClient } from '../api-client.ts';
import { ApiError } from '../api-client.ts';
import { describeError } from '../error-text.ts';
import type { Chat, Connection } from '../types.ts';

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
}

// The one-line text for any failure: "CODE — sentence" for API errors, plus field details.
export const errorLine = (err: unknown): string => {
  if (err instanceof ApiError) {
    const main = describeError({ code: err.code, message: err.message, retryAfter: err.retryAfter });
    const details = err.details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join('; ');
    return details ? `${main} (${details})` : main;
  }
  return `Unexpected error — ${err instanceof Error ? err.message : String(err)}`;
};

export const connectionName = (c: Connection): string =>
  c.displayName || (c.username ? `@${c.username}` : '') || c.phone || (c.kind === 'bot' ? 'Bot' : c.login?.method === 'qr' ? 'QR login' : 'New login');
