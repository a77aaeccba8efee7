import type { AnyStateMachine } from 'xstate';
import type { OutboundMessage } from '../delivery/types.ts';
import type { SecretName } from '../store/connections.ts';
import type { ChatCheck } from './types.ts';

// The seam between the platform-neutral supervisor and one platform's I/O for one connection.
// A driver owns the client, the decrypted secrets and the out-of-band password; the machine it
// provides never sees any of them.

export interface SecretVault {
  load(): Promise<Partial<Record<SecretName, string>>>;
  save(name: SecretName, plaintext: string): Promise<void>;
  remove(name: SecretName): Promise<void>;
}

export interface DriverContext {
  connectionId: string;
  owner: string;
  secrets: SecretVault;
  /** Runs a (re)connect attempt through the connection's circuit breaker. */
  guard<T>(fn: () => Promise<T>): Promise<T>;
}

export interface ReceivedMessage {
  chat: string;
  from: string;
  text: string;
  platformMessageId: string;
  date: string;
}

export interface Driver {
  readonly kind: 'user' | 'bot';
  /** The machine with this connection's I/O provided. */
  readonly machine: AnyStateMachine;
  /** Holds the 2FA password for checkPassword; the supervisor clears it when the step ends. */
  setPassword(password: string | undefined): void;
  send(msg: OutboundMessage & { randomId: bigint }): Promise<{ platformMessageId: string }>;
  checkChat(ref: string): Promise<ChatCheck>;
  /** Turns a platform update into an incoming message, or null when it is not one. */
  received(update: unknown): ReceivedMessage | null;
  bytes(): number;
  trim(): void;
  /** Logs out at the platform (DELETE); failures are the caller's to log. */
  logOut(): Promise<void>;
  /** Closes the client without logging out (stop, restart, shutdown, error). The actor may reconnect later. */
  dispose(): Promise<void>;
  /** The connection is gone from this process: forget its slots. */
  release(): void;
}
