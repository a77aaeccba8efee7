import type { SrpChallenge, SrpVerifier } from '../crypto/srp.ts';

// The emulator's domain model: plain records, no wire formats. MTProto and the Bot API each render
// these their own way (mtproto/peers.ts, bot-api/render.ts).

export interface Clock { now(): number }

/** An error as Telegram names it: MTProto sends it as rpc_error, the Bot API translates it. */
export class TgError extends Error {
  constructor(readonly code: number, message: string, readonly retryAfter?: number) {
    super(message);
    this.name = 'TgError';
  }
}

export const floodWait = (seconds: number): TgError => new TgError(420, `FLOOD_WAIT_${seconds}`, seconds);

/** How a login code reaches the user (the API's names): `auth.sentCodeType…` on the wire. */
export type CodeType = 'app' | 'sms' | 'call' | 'flash-call' | 'missed-call' | 'email' | 'fragment';

export interface UserRec {
  kind: 'user';
  id: number;
  accessHash: bigint;
  phone: string;
  firstName: string;
  username?: string;
  /** The home DC: the only one that serves this account (others answer *_MIGRATE_<dc>). */
  dc: number;
  srp?: SrpVerifier;
  /** The order codes are delivered in: sendCode sends the first, each resendCode the next. */
  codeTypes: CodeType[];
  /** Seconds before resendCode may move on (Telegram's `timeout`); undefined = per type. */
  codeTimeoutS?: number;
  codeLength?: number;
  loginEmail?: string;
  recoveryEmail?: string;
  /** The 2FA recovery code last "emailed" (auth.requestPasswordRecovery). */
  recovery?: { code: string; expiresAt: number };
  /** Update sequence of the user's private box (private chats and basic groups). */
  pts: number;
  box: Array<{ pts: number; message: MessageRec }>;
}

export interface BotRec {
  kind: 'bot';
  id: number;
  accessHash: bigint;
  username: string;
  firstName: string;
  token: string;
  revoked: boolean;
  webhook?: WebhookRec;
  /** getUpdates calls answered (conflicts included) since the bot was created. */
  getUpdatesCalls: number;
  updates: Array<{ updateId: number; message: MessageRec }>;
  nextUpdateId: number;
}

export interface WebhookRec {
  url: string;
  secretToken?: string;
  maxConnections: number;
  lastErrorDate?: number;
  lastErrorMessage?: string;
}

export type Account = UserRec | BotRec;

export type ChatKind = 'channel' | 'supergroup' | 'group';
export type Role = 'creator' | 'admin' | 'member';

/** Bot API ChatAdministratorRights names (can_post_messages, ...); absent keys default by role. */
export type Rights = Record<string, boolean>;

export interface MemberRec { id: number; role: Role; rights: Rights; date: number }

export interface ChatRec {
  id: number;
  kind: ChatKind;
  accessHash: bigint;
  title: string;
  username?: string;
  /** The hash of the chat's invite link, https://t.me/+<hash>. */
  inviteHash: string;
  date: number;
  members: Map<number, MemberRec>;
  /** Channels and supergroups number their messages per chat; basic groups use the users' boxes. */
  nextMessageId: number;
  pts: number;
  /** Id of the "chat created" service message, the dialog's top message until something is posted. */
  createdMessageId: number;
  /** Newest message, the top message of the chat's dialog. */
  last?: MessageRec;
}

export type PeerRef = { type: 'user'; id: number } | { type: 'chat'; chat: ChatRec };

export interface MessageRec {
  id: number;
  /** Bot API style: the addressed user for private chats, -id for groups, -100… for channels. */
  chatId: number;
  peer: PeerRef;
  fromId: number;
  text: string;
  date: number;
  randomId: string | null;
  /** The formatting the sender sent (MTProto `entities`), Bot API style; absent when none. */
  entities?: EntityRec[];
  /** The file the message carries (`text` is then its caption): only its facts, never its bytes. */
  media?: MediaRec;
  /** Domain time (s) of the last edit, and how many edits changed it (a repeat answered MESSAGE_NOT_MODIFIED does not count). */
  editedAt?: number;
  edits?: number;
  /** Deleted for everyone: kept in the delivered log, gone from the chat. */
  deleted?: boolean;
}

export type MediaType = 'photo' | 'document' | 'video' | 'audio' | 'voice' | 'animation';

/** What a chat shows of a file, and what tests compare: its size and SHA-256. */
export interface MediaRec {
  type: MediaType;
  size: number;
  sha256: string;
  filename?: string;
  mimeType?: string;
}

/**
 * One message entity as it reached the chat, named like the Bot API's MessageEntity (bold,
 * text_link, pre …); offset and length in UTF-16 code units. Lets a test check what a parse mode became.
 */
export interface EntityRec {
  type: string;
  offset: number;
  length: number;
  url?: string;
  language?: string;
  user_id?: number;
  custom_emoji_id?: string;
}

export interface LoginCode {
  phone: string;
  hash: string;
  /** What the user must type for the current delivery (for a flash call: the calling number's digits). */
  code: string;
  /** The digits shared by every delivery of this login (Telegram resends the same code). */
  base: string;
  expiresAt: number;
  /** Index into the user's codeTypes of the delivery in force. */
  step: number;
  /** Domain time (ms) before which resendCode answers FLOOD_WAIT. */
  resendAt: number;
}

export interface AuthKeyRec {
  id: bigint;
  key: Buffer;
  /** The DC that made this key: other DCs do not know it (transport error -404 there). */
  dc: number;
  salt: bigint;
  userId?: number;
  revoked: boolean;
  /** Session ids seen with this key: a new one gets new_session_created. */
  sessions: Set<bigint>;
  login?: LoginCode;
  /** Set after SESSION_PASSWORD_NEEDED: the user whose 2FA password this key must prove. */
  passwordUserId?: number;
  srp?: SrpChallenge;
  qr?: { token: Buffer; expiresAt: number; acceptedBy?: number };
}

export interface DcStats {
  connections: number;
  activeAuthKeys: number;
  /** DH key exchanges completed on this DC since start. */
  handshakes: number;
  connectionsAccepted: number;
}

export interface Stats {
  connections: number;
  activeAuthKeys: number;
  duplicateAuthKeyUse: number;
  delivered: number;
  floodWaitsServed: number;
  handshakes: number;
  /** MTProto TCP connections accepted since start (a client that reconnects adds one). */
  connectionsAccepted: number;
  /** Every PHONE_/USER_/NETWORK_MIGRATE_X answer and auth.loginTokenMigrateTo served since start. */
  migrationsServed: number;
  byDc: Record<string, DcStats>;
  /** Bot API getUpdates calls per bot id (bots that made none are left out). */
  getUpdatesCalls: Record<string, number>;
}

/** What the wire layers must push: the world decides who gets what, they render and send. */
export type WorldEvent =
  | { type: 'message'; message: MessageRec; recipients: number[] }
  | { type: 'login-token'; authKeyId: bigint }
  | { type: 'drop'; accountId?: number }
  | { type: 'webhook'; botId: number }
  | { type: 'revoked'; accountId?: number };
