import type { Connection, ListFilter } from '../store/connections.ts';

// What the control plane asks of the supervisor. Every method is owner-scoped: an id that belongs
// to another owner is NOT_FOUND, exactly like an id that does not exist.

export type CreateConnection =
  | { platform: 'telegram'; kind: 'user'; method: 'phone'; phone: string } // E.164, validated by the API
  | { platform: 'telegram'; kind: 'user'; method: 'qr' }
  | { platform: 'telegram'; kind: 'bot'; token: string };

export interface ChatCheck {
  platformChatId: string;
  type: 'channel' | 'group' | 'supergroup' | 'private';
  title: string;
  username?: string;
  isAdmin: boolean;
  canSend: boolean;
  rights: Record<string, boolean>;
}

export interface ActorSummary {
  id: string; kind: 'user' | 'bot'; owner: string; state: string; since: string; restarts: number;
  breaker: { state: string; failures: number; openUntil?: string };
  memory: { bytes: number; budget: number };
  lastError?: { code: string; message: string; retryAt?: string };
  shard: number;
}

export interface ActorDetail extends ActorSummary {
  snapshot: { value: unknown; status: string; tags: string[] };
  context: Record<string, unknown>; // without secrets
  transitions: { at: string; from: string; to: string; event: string }[]; // last 50
}

export interface ConnectionService {
  /** Bots: the token is checked with getMe first; a bad one throws TG_BOT_TOKEN_INVALID and stores nothing. */
  create(owner: string, input: CreateConnection): Promise<Connection>;
  get(owner: string, id: string): Promise<Connection>;
  list(owner: string, filter: ListFilter): Promise<{ items: Connection[]; nextCursor?: string }>;
  /** INVALID_STATE when not awaiting a code; TG_CODE_INVALID / TG_CODE_EXPIRED; else the Connection. */
  submitCode(owner: string, id: string, code: string): Promise<Connection>;
  /** INVALID_STATE when not awaiting the 2FA password; TG_PASSWORD_INVALID; else the Connection. */
  submitPassword(owner: string, id: string, password: string): Promise<Connection>;
  /** INVALID_STATE when not awaiting a QR scan. */
  qr(owner: string, id: string): Promise<{ url: string; expiresAt: string }>;
  /** Leaves `error`, resets the breaker. */
  reconnect(owner: string, id: string): Promise<Connection>;
  /** Logs out at the platform, stops the actor, deletes secrets and rows (chats, messages cascade). */
  remove(owner: string, id: string): Promise<void>;
  /** Every connection of the owner (DELETE /v1/me). */
  removeAll(owner: string): Promise<number>;
  /** Resolves a chat through the connection and checks membership and rights. TG_CHAT_NOT_FOUND / TG_NOT_MEMBER. */
  checkChat(owner: string, id: string, chat: string): Promise<ChatCheck>;

  // Operators (/admin): not owner-scoped.
  actors(): { items: ActorSummary[]; totals: Record<string, number> };
  /** The same summaries a page at a time, built as each page is taken (the admin route streams them). */
  actorPages(pageSize: number): Iterable<ActorSummary[]>;
  actor(id: string): ActorDetail | undefined;
  restart(id: string): Promise<boolean>;
}
