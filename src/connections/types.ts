import type { ChatCheck } from '../store/chats.ts';
import type { Connection, ListFilter } from '../store/connections.ts';
import type { ActorDetail, ActorSummary } from '../supervisor/types.ts';

// What the control plane asks of the connection service. Every method is owner-scoped: an id that
// belongs to another owner is NOT_FOUND, exactly like an id that does not exist.

/** A validated create body: `platform`, `kind` and the fields that platform's schema takes. */
export type CreateConnection = { platform: string; kind: string } & Record<string, unknown>;

export interface ConnectionService {
  /** The platform checks the request first (a bot token with getMe); a refusal stores nothing. */
  create(owner: string, input: CreateConnection): Promise<Connection>;
  get(owner: string, id: string): Promise<Connection>;
  list(owner: string, filter: ListFilter): Promise<{ items: Connection[]; nextCursor?: string }>;
  /** INVALID_STATE when not awaiting a code; the platform's rejection (422); else the Connection. */
  submitCode(owner: string, id: string, code: string): Promise<Connection>;
  /** The code again by Telegram's next way: INVALID_STATE when not awaiting a code; TG_CODE_RESEND_UNAVAILABLE / TG_API_429. */
  resendCode?(owner: string, id: string): Promise<Connection>;
  /** Forgotten 2FA password: a recovery code goes by e-mail. INVALID_STATE outside awaiting-2fa; the platform's refusal (422). */
  requestPasswordRecovery?(owner: string, id: string): Promise<{ emailPattern: string }>;
  /** Signs in with the e-mailed code (and sets `newPassword`, used once, never stored). */
  recoverPassword?(owner: string, id: string, code: string, newPassword?: string): Promise<Connection>;
  /** INVALID_STATE when not awaiting the 2FA password; the platform's rejection (422); else the Connection. */
  submitPassword(owner: string, id: string, password: string): Promise<Connection>;
  /** INVALID_STATE when not awaiting a QR scan. */
  qr(owner: string, id: string): Promise<{ url: string; expiresAt: string }>;
  /** The OAuth callback (no caller: the state is the proof); answers the browser's next address. */
  authorizationCallback?(platform: string, q: { code?: string; state?: string; error?: string }): Promise<string>;
  /** A new login.authorizeUrl for an OAuth connection in error or awaiting-authorization. */
  reauthorize?(owner: string, id: string): Promise<Connection>;
  /** Leaves `error`, resets the breaker. */
  reconnect(owner: string, id: string): Promise<Connection>;
  /** Logs out at the platform, stops the actor, deletes secrets and rows (chats, messages cascade). */
  remove(owner: string, id: string): Promise<void>;
  /** Every connection of the owner (DELETE /v1/me). */
  removeAll(owner: string): Promise<number>;
  /**
   * Stops every running connection of the owner, keeping its credentials: status `stopped` with
   * `reason` as its error (a withdrawn consent: CONSENT_WITHDRAWN). Returns how many it stopped;
   * a connection already stopped stays as it is. RECONNECT starts one again.
   */
  stopAll(owner: string, reason: { code: string; message: string }): Promise<number>;
  /**
   * Resolves a chat through the connection and checks membership and rights (the platform's codes,
   * 422); with requireAdmin, a chat where the connection is not an admin is refused the same way.
   */
  checkChat(owner: string, id: string, chat: string, opts?: { requireAdmin?: boolean }): Promise<ChatCheck>;
  /** The canonical form of a chat reference for the connection's platform; VALIDATION_ERROR when none fits. */
  chatRef(owner: string, id: string, chat: string): Promise<string>;

  // Operators (/admin): not owner-scoped.
  actors(): { items: ActorSummary[]; totals: Record<string, number> };
  /** The same summaries a page at a time, built as each page is taken (the admin route streams them). */
  actorPages(pageSize: number): Iterable<ActorSummary[]>;
  /** Throws NotOwnerError when another node of the cluster runs it (the call is forwarded there). */
  actor(id: string): Promise<ActorDetail | undefined>;
  restart(id: string): Promise<boolean>;
}
