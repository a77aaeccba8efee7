// The one interface every platform implements, owned by the core (ARCHITECTURE.md: "One platform
// interface"). The supervisor, the connection service, delivery, the API and the machines read
// what a platform declares here — kinds, create schemas, login steps, machines, drivers, error
// categories, send capabilities, pacing windows — and never a platform's own codes or clients.
// A platform lives in src/platforms/<name>/ and is registered with one line in src/platforms/index.ts.
import type Joi from 'joi';
import type { AnyStateMachine } from 'xstate';
import type { Logger } from 'winston';
import type { AppError, ErrorCodeSpec } from '../errors.ts';
import type { ChatCheck } from '../store/chats.ts';

export type { ChatCheck };

export interface Profile { platformUserId: string; displayName: string; username?: string }

/** A connection's secrets, decrypted on load and encrypted on save (names are the platform's). */
export interface SecretVault {
  load(): Promise<Record<string, string>>;
  save(name: string, plaintext: string): Promise<void>;
  remove(name: string): Promise<void>;
}

/** What the supervisor gives a driver for one connection. */
export interface DriverContext {
  connectionId: string;
  owner: string;
  secrets: SecretVault;
  logger: Logger;
  /**
   * Whether this node may still talk to the platform for the connection (several daemons: its
   * shard's lease is held and not past its local deadline). A driver opens no socket and sends no
   * keepalive once it is false; the actor is being stopped.
   */
  runsHere?(): boolean;
  /** Runs a (re)connect attempt through the connection's circuit breaker. */
  guard<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Settles once every update the watcher reported so far is stored with its event; rejects if one of
   * them could not be stored. A platform that redelivers what was not confirmed (the Bot API's
   * getUpdates offset) confirms only after this, so a crash in between loses nothing.
   */
  incomingStored?(): Promise<void>;
}

/** The kinds of media a message may carry (API.md "Messages beyond text"). */
export const mediaTypes = ['photo', 'document', 'video', 'audio', 'voice', 'animation'] as const;
export type MediaType = typeof mediaTypes[number];

/** A message's file as delivery hands it to a driver: facts up front, bytes read from storage on demand. */
export interface OutboundMedia {
  type: MediaType;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
  /** The stored upload it is read from, when it is one (a signed media link names it). */
  uploadId?: string;
  /**
   * The file's bytes in order, a chunk (1 MiB) at a time from storage; each call reads afresh. Never
   * the whole file in memory: a driver sends each chunk before it asks for the next.
   */
  read(): AsyncIterable<Buffer>;
}

/** A message on its way out, as delivery hands it to the connection's driver. */
export interface OutboundMessage {
  id: string;
  owner: string;
  connectionId: string;
  /** As stored: the platform chat id once resolved, else the reference the caller gave. */
  chat: string;
  text: string;
  parseMode?: 'html' | 'markdown';
  silent: boolean;
  replyTo?: string;
  priority: 'high' | 'normal' | 'low';
  /** 1 on the first try. */
  attempts: number;
  createdAt: Date;
  /** The file to send, with `text` as its caption (possibly empty). */
  media?: OutboundMedia;
  /**
   * A carousel (Instagram): 2–10 photos and videos published as one post, `text` its caption; `media`
   * is absent then. A kind takes it only where `send.media.carousel` says so.
   */
  items?: OutboundMedia[];
  /** A pre-approved template to send instead of text (WhatsApp: required outside the 24-hour window). */
  template?: MessageTemplate;
}

/** A platform message template by name and locale, with its parameters (WhatsApp `template`). */
export interface MessageTemplate { name: string; language: string; components?: unknown[] }

/** An edit or delete of a message the connection sent, as delivery hands it to the driver. */
export interface OutboundOperation {
  /** The operation's own id (stable across attempts). */
  id: string;
  owner: string;
  connectionId: string;
  type: 'edit' | 'delete';
  /** The platform chat id of the message. */
  chat: string;
  /** The platform's id of the message to change. */
  platformMessageId: string;
  /** Edit: the new text (the caption, when the message carries media). */
  text: string;
  parseMode?: 'html' | 'markdown';
  /** The media type of the message, when it has one: an edit changes its caption. */
  media?: MediaType;
  /** When the message was sent: platforms refuse to change old messages (Telegram bots: 48 h in groups). */
  sentAt: Date;
  /** 1 on the first try; a later try may find the change already made (an answer lost). */
  attempts: number;
}

export interface ReceivedMessage {
  chat: string;
  from: string;
  /** with media, its caption (may be empty) */
  text: string;
  platformMessageId: string;
  date: string;
  media?: ReceivedMedia;
}

/** What an incoming message's file is; its bytes stay at the platform. */
export interface ReceivedMedia { type: MediaType; filename?: string; contentType?: string; size?: number }

/**
 * One connection's I/O. It owns the platform client and the decrypted secrets; the machine it
 * serves never sees either. Everything it throws is an AppError with a category (the adapter's
 * classifier); anything else is treated as a bug with an unknown outcome.
 */
export interface Driver {
  /** The implementations of the kind's machine slots, by slot name (see ConnectionKind.machine). */
  readonly slots: Record<string, (...args: any[]) => unknown>;
  /** Holds a secret a login step needs out of band (the 2FA password); cleared when the step ends. */
  holdSecret?(name: 'password' | 'recovery', value: string | undefined): void;
  /** A forgotten 2FA password: sends a recovery code by e-mail, answers the address's pattern. */
  passwordRecovery?(): Promise<{ emailPattern: string }>;
  send(msg: OutboundMessage): Promise<{ platformMessageId: string }>;
  /**
   * Edits or deletes a message this connection sent, where the kind declares it (SendCapabilities.
   * operations). Resolves once the platform shows the change, also when a repeated try finds it
   * already made (an edit to the text it has, a delete of a message already gone).
   */
  operate?(op: OutboundOperation): Promise<void>;
  /**
   * Resolves a chat reference and checks membership and rights; with requireAdmin, refuses (with the
   * platform's code) a chat where the connection is not an admin.
   */
  checkChat?(ref: string, opts?: { requireAdmin?: boolean }): Promise<ChatCheck>;
  /** Turns a platform update into an incoming message, or null when it is not one. */
  received(update: unknown): ReceivedMessage | null;
  /** Platform quotas this connection draws on, as the service counts them (Connection.quotas). */
  quotas?(): Array<{ name: string; used: number; limit: number; resetsAt: string }>;
  /** Bytes this connection holds (the supervisor's memory budget); trim() drops caches. */
  bytes(): number;
  trim(): void;
  /** Logs out at the platform (DELETE); failures are the caller's to log. */
  logOut(): Promise<void>;
  /** Closes the client without logging out (stop, restart, shutdown, error). The actor may reconnect later. */
  dispose(): Promise<void>;
}

/** A limit of `n` calls per `ms` milliseconds. */
export interface RateWindow { n: number; ms: number }

export interface SendCapabilities {
  /** Longest text the platform takes in one message, and the markups it renders. */
  text: { maxLength: number; parseModes: Array<'html' | 'markdown'> };
  /**
   * Whether a send whose outcome is unknown (no answer came) may be sent again: true when the platform
   * drops a duplicate by a key we derive from the message id (Telegram's random_id for user
   * accounts), false when a resend could post twice (the Bot API): the message then fails OUTCOME_UNKNOWN.
   */
  resendSafe: boolean;
  /** Pacing windows for one chat and for the whole connection (the platform's published limits). */
  pacing(chat: string): { chat: RateWindow[]; connection: RateWindow[] };
  /**
   * Media a message may carry: the types this kind sends, each with the largest file it takes, and
   * the longest caption. Absent: text only. A type not listed answers PLATFORM_UNSUPPORTED at accept.
   */
  media?: {
    types: Partial<Record<MediaType, { maxBytes: number }>>; captionMaxLength: number;
    /** Several files in one post (OutboundMessage.items): how many, and of which of `types`. */
    carousel?: { minItems: number; maxItems: number; types: MediaType[] };
  };
  /**
   * Edits and deletes of sent messages the kind can make (Driver.operate), each with `resendSafe` as
   * for sends: whether a try whose answer was lost may be made again. Absent: neither.
   */
  operations?: { edit?: { resendSafe: boolean }; delete?: { resendSafe: boolean } };
  /** Whether a message may be a platform template (`OutboundMessage.template`; WhatsApp). Absent: no. */
  templates?: boolean;
  /**
   * Free-form messages only within `hours` of the recipient's last incoming message (WhatsApp: 24), as
   * the platform's signed webhooks report them; `peer` maps a `chat` to the id incoming messages carry.
   * Declared only when the webhooks can be verified: without them the service cannot know the window.
   */
  serviceWindow?: { hours: number; peer(chat: string): string | undefined };
}

/** Login steps a kind takes; the API's step routes answer INVALID_STATE where the machine does not accept them. */
export type LoginStep = 'code' | 'password' | 'qr' | 'authorize';

/** What a platform's token endpoint answered (RFC 6749 §5.1), in the service's words. */
export interface OAuthTokens {
  accessToken: string;
  /** Absent when the platform kept the old one (Google on refresh); present and new when it rotates (TikTok). */
  refreshToken?: string;
  /** Seconds the access token lives, as the token endpoint said (`expires_in`): never assumed. */
  expiresIn: number;
  /** Seconds the refresh token lives, where the platform says (TikTok `refresh_expires_in`). */
  refreshExpiresIn?: number;
  scope?: string;
}

/**
 * An OAuth 2.0 authorization-code login (API.md "OAuth platforms"). The core makes the state (single
 * use, 10 min) and the PKCE pair, serves the callback and stores the tokens as connection secrets
 * (`access_token`, `refresh_token`, `access_expires_at`); the platform builds its URLs and calls its
 * token endpoint. Errors: PLATFORM_AUTH_REVOKED (the grant is dead: invalid_grant), PLATFORM_AUTH_INVALID
 * or PLATFORM_REJECTED (a bad code), category retry for 5xx and network errors (never revocation).
 */
export interface OAuthLogin {
  /** Sends a PKCE challenge (RFC 7636, S256) and the verifier at the exchange. */
  pkce: boolean;
  authorizeUrl(p: { state: string; redirectUri: string; codeChallenge?: string }): string;
  exchange(p: { code: string; redirectUri: string; codeVerifier?: string }): Promise<OAuthTokens>;
  refresh(refreshToken: string): Promise<OAuthTokens>;
}

/** One kind of connection of a platform (Telegram: `user`, `bot`). */
export interface ConnectionKind {
  kind: string;
  /** Bump when the machine's states or context change shape; stored next to each snapshot. */
  machineVersion: number;
  /**
   * The kind's machine with its slots provided: each slot's actor calls `slotsOf(connectionId)[slot]`.
   * Built once per supervisor (providing per connection clones the machine config: ~2 ms each).
   */
  machine(slotsOf: (connectionId: string) => Driver['slots']): AnyStateMachine;
  /** A stored snapshot of an older machine version in the current shape, or undefined (start afresh). */
  migrateSnapshot?(stored: Record<string, unknown>, version: number): Record<string, unknown> | undefined;
  /** Machine input for a connection started from its row (`login` as stored at creation). */
  input(row: { id: string; login: Record<string, unknown> | null }, backoff: { baseMs: number; capMs: number }): unknown;
  driver(ctx: DriverContext): Driver;
  loginSteps: LoginStep[];
  send: SendCapabilities;
  /** OAuth kinds: the authorize URL, code exchange and refresh (with `loginSteps: ['authorize']`). */
  oauth?: OAuthLogin;
}

/** What a create request asks to store, decided by the platform before any row exists. */
export interface NewConnectionPlan {
  kind: string;
  /** Encrypted and stored in the row's transaction (e.g. a bot token, a phone number). */
  secrets: Record<string, string>;
  /** Shown while logging in (row.login), e.g. `{ method: 'qr' }`. */
  login?: Record<string, unknown>;
  phoneMasked?: string;
  /** Known before the first connect (a bot's getMe). */
  profile?: Profile;
  /** The platform account the connection will be; a second connection to it by one owner is refused. */
  accountId?: string;
  /** Non-secret facts for the audit entry. */
  audit: Record<string, unknown>;
}

/** API operations whose platform error codes the OpenAPI description lists. */
export type Operation = 'create' | 'code' | 'code.resend' | 'password' | 'password.recovery' | 'chat.add' | 'chat.refresh' | 'delete';

/** A delivery status a platform reported for a message it sent (WhatsApp `statuses`). */
export interface PlatformStatus {
  /** The platform account it concerns (the connection's profile.platformUserId). */
  accountId: string;
  platformMessageId: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  at: Date;
  /** For `failed`: the platform's reason as the core's error (its code kept in the message). */
  error?: AppError;
}

/** What one signed webhook delivery carried, in the core's terms. */
export interface WebhookBatch {
  statuses: PlatformStatus[];
  received: Array<{ accountId: string; message: ReceivedMessage }>;
  /**
   * Accounts whose authorization was withdrawn at the platform (TikTok's authorization.removed, with
   * its reason): every connection to them goes to error PLATFORM_AUTH_REVOKED.
   */
  revoked?: Array<{ accountId: string; reason: string }>;
}

/**
 * A platform that pushes events to `/v1/platform-webhooks/{platform}`: the verification handshake,
 * the signature over the raw body, and the parse. The core routes the result to the owning connections.
 */
export interface PlatformWebhooks {
  /** GET handshake: the challenge to echo, or undefined (403) when the verify token is wrong or unset. */
  challenge(query: Record<string, string | undefined>): string | undefined;
  /** Whether the raw body carries a valid signature (constant-time compare); false when no secret is set. */
  authentic(raw: Buffer, headers: Record<string, string | string[] | undefined>): boolean;
  /** The events of an authentic body; throws VALIDATION_ERROR when it is not the platform's shape. */
  parse(raw: Buffer): WebhookBatch;
}

export interface PlatformAdapter {
  /** `platform` in the API and in rows: 'telegram', 'instagram', … */
  name: string;
  kinds: ConnectionKind[];
  /** The platform's error codes with their HTTP status and category (registered at start). */
  errorCodes: Record<string, ErrorCodeSpec>;
  /** Platform error codes each API operation may answer, by status, for the OpenAPI description. */
  documentedErrors?: Partial<Record<Operation, Record<number, string[]>>>;
  /**
   * The body of `POST /v1/connections` for this platform (with `platform` and `kind`); the API's
   * schema is the union of every adapter's.
   */
  createSchema: Joi.ObjectSchema;
  /** Checks a validated create body (e.g. the bot token with the platform) and says what to store. */
  prepare(body: Record<string, unknown>): Promise<NewConnectionPlan>;
  /** A platform error that escaped a driver unmapped → AppError, or undefined when it is not the platform's. */
  classify(err: unknown): AppError | undefined;
  /** Canonical form of a chat reference for `POST /v1/connections/{id}/chats`, or undefined (400). */
  chatRef?: { normalise(ref: string): string | undefined; description: string };
  /** Platforms that push events by webhook (Meta: statuses and incoming messages). */
  webhooks?: PlatformWebhooks;
  /** Closes shared clients (connection pools); after every driver is disposed. */
  stop?(): Promise<void>;
}
