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

/** "+44 7700 900123" → "447700900123": Telegram keys accounts by the digits. */
export const normalizePhone = (phone: string): string => phone.replace(/[\s()+-]/g, '');
export const validPhone = (digits: string): boolean => /^\d{7,15}$/.test(digits);

export const floodWait = (seconds: number): TgError => new TgError(420, `FLOOD_WAIT_${seconds}`, seconds);

export interface UserRec {
  kind: 'user';
  id: number;
  accessHash: bigint;
  phone: string;
  firstName: string;
  username?: string;
  srp?: SrpVerifier;
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
  webhook?: string;
  updates: Array<{ updateId: number; message: MessageRec }>;
  nextUpdateId: number;
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

export interface LoginCode { phone: string; hash: string; code: string; expiresAt: number }

export interface AuthKeyRec {
  id: bigint;
  key: Buffer;
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

export interface Stats {
  connections: number;
  activeAuthKeys: number;
  duplicateAuthKeyUse: number;
  delivered: number;
  floodWaitsServed: number;
  handshakes: number;
  /** MTProto TCP connections accepted since start (a client that reconnects adds one). */
  connectionsAccepted: number;
}

/** What the wire layers must push: the world decides who gets what, they render and send. */
export type WorldEvent =
  | { type: 'message'; message: MessageRec; recipients: number[] }
  | { type: 'login-token'; authKeyId: bigint }
  | { type: 'drop'; accountId?: number }
  | { type: 'revoked'; accountId?: number };
