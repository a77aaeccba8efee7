// The resources of API.md as the console sees them. Every string in here may come from a platform
// (titles, names, texts, error messages): views render them with textContent only.

export type ConnectionStatus =
  | 'connecting' | 'awaiting-code' | 'awaiting-qr' | 'awaiting-2fa' | 'awaiting-authorization' | 'active' | 'error' | 'stopped';

export const connectionStatuses: readonly ConnectionStatus[] = [
  'active', 'connecting', 'awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'awaiting-authorization', 'error', 'stopped',
];

/** A platform quota the service counts for an OAuth connection (Instagram/Threads posts a day, YouTube units). */
export interface PlatformQuota { name: string; used: number; limit: number; resetsAt: string }

export interface ErrorInfo { code: string; message: string; retryAt?: string; retryAfter?: number }

export interface Connection {
  id: string;
  platform: string;
  /** Telegram: user, bot; OAuth platforms: account; WhatsApp: business-number. */
  kind: string;
  status: ConnectionStatus;
  statusSince: string;
  displayName?: string;
  username?: string;
  platformUserId?: string;
  phone?: string;
  login?: {
    method: 'phone' | 'qr' | 'oauth';
    /** OAuth platforms, while awaiting-authorization: the platform's consent page (single use, 10 min). */
    authorizeUrl?: string;
    codeType?: 'app' | 'sms' | 'call' | 'flash-call' | 'missed-call' | 'email' | 'fragment';
    nextCodeType?: string;
    codeLength?: number;
    resendAfter?: string;
    qr?: { url: string; expiresAt: string };
    passwordHint?: string;
  };
  error?: ErrorInfo;
  createdAt: string;
  updatedAt: string;
  lastActiveAt?: string;
  quotas?: PlatformQuota[];
}

export interface Chat {
  id: string;
  connectionId: string;
  platformChatId: string;
  type: 'channel' | 'group' | 'supergroup' | 'private';
  title: string;
  username?: string;
  isAdmin: boolean;
  canSend: boolean;
  rights: Record<string, boolean | undefined>;
  checkedAt: string;
}

export type MessageStatus = 'queued' | 'sending' | 'sent' | 'failed' | 'cancelled';
export type MediaType = 'photo' | 'document' | 'video' | 'audio' | 'voice' | 'animation';

export interface MessageMedia { type: MediaType; uploadId?: string; url?: string; filename?: string; contentType?: string; size?: number; sha256?: string }

/** An edit or delete not yet applied to a message, or the last one if it failed. */
export interface PendingOperation { type: 'edit' | 'delete'; status: 'queued' | 'sending' | 'failed'; text?: string; error?: ErrorInfo; requestedAt: string }

export interface Upload { id: string; size: number; sha256: string; contentType: string; filename: string; expiresAt: string }
export type Priority = 'high' | 'normal' | 'low';

export interface Message {
  id: string;
  connectionId: string;
  chat: string;
  text: string;
  priority: Priority;
  status: MessageStatus;
  attempts: number;
  platformMessageId?: string;
  error?: ErrorInfo;
  createdAt: string;
  sentAt?: string;
  media?: MessageMedia;
  /** a carousel (Instagram): its files in order */
  items?: MessageMedia[];
  editedAt?: string;
  deletedAt?: string;
  pendingOperation?: PendingOperation;
}

export interface ReceivedMessage {
  connectionId: string;
  chat: string;
  from: string;
  text: string;
  platformMessageId: string;
  date: string;
}

export interface Page<T> { items: T[]; nextCursor?: string }

export type LiveFrame =
  | { type: 'connection.status'; at: string; data: Connection }
  | { type: 'message.status'; at: string; data: Message }
  | { type: 'message.received'; at: string; data: ReceivedMessage };

export interface AuditEntry { id?: string; at: string; actor: string; action: string; target?: string | null; details?: unknown; owner?: string }

export interface Consent { purpose: string; version: string; granted: boolean; at: string }

export interface ActorSummary {
  id: string; kind: string; owner?: string; state: string; since?: string; restarts: number;
  breaker?: { state: string; failures: number; openUntil?: string };
  memory?: { bytes: number; budget: number };
  lastError?: { code: string; message: string }; shard?: number; node?: string;
}
export interface ActorList { items: ActorSummary[]; totals: Record<string, number> }
/** `GET /admin/cluster`: live nodes only; every shard `0 … SHARDS-1`, `owner` null while free. */
export interface ClusterView {
  node: string;
  nodes: { id: string; startedAt: string; lastSeenAt: string; shards: number[] }[];
  shards: { shard: number; owner: string | null; epoch: number; expiresAt: string | null }[];
}

export interface Webhook {
  id: string; url: string; events: string[]; description?: string; enabled: boolean; disabledReason?: string; createdAt: string;
  /** only in the answer that creates or rotates it */
  secret?: string;
}
export interface WebhookDelivery {
  id: string; webhookId: string; eventId: string; eventType: string; status: 'pending' | 'succeeded' | 'failed';
  attempts: { at: string; httpStatus?: number; error?: string; durationMs: number }[]; nextAttemptAt?: string;
}
