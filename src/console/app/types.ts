// The resources of API.md as the console sees them. Every string in here may come from a platform
// (titles, names, texts, error messages): views render them with textContent only.

export type ConnectionStatus =
  | 'connecting' | 'awaiting-code' | 'awaiting-qr' | 'awaiting-2fa' | 'active' | 'error' | 'stopped';

export const connectionStatuses: readonly ConnectionStatus[] = [
  'active', 'connecting', 'awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'error', 'stopped',
];

export interface ErrorInfo { code: string; message: string; retryAt?: string; retryAfter?: number }

export interface Connection {
  id: string;
  platform: string;
  kind: 'user' | 'bot';
  status: ConnectionStatus;
  statusSince: string;
  displayName?: string;
  username?: string;
  platformUserId?: string;
  phone?: string;
  login?: {
    method: 'phone' | 'qr';
    codeType?: 'app' | 'sms';
    qr?: { url: string; expiresAt: string };
    passwordHint?: string;
  };
  error?: ErrorInfo;
  createdAt: string;
  updatedAt: string;
  lastActiveAt?: string;
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

export type MessageStatus = 'queued' | 'sending' | 'sent' | 'failed';
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
