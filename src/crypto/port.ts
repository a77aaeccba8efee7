// The keyring port: secrets at rest (session strings, bot tokens, 2FA hints) go through it, and only its
// ciphertexts reach Postgres. Ciphertexts are self-describing strings that carry the key version
// ("local:v3:…", "vault:v2:…"), so old rows keep decrypting after a rotation and a rewrap job can find them.
import { AppError } from '../errors.ts';

export interface Keyring {
  // `context` is associated data (see secretContext): a ciphertext moved to another row does not decrypt.
  encrypt(plaintext: string, context?: string): Promise<string>;
  decrypt(ciphertext: string, context?: string): Promise<string>;
  // Creates a new key version on demand and returns it; new encryptions use it from now on.
  rotate(): Promise<number>;
  // Creates a new version only when the newest is older than the rotation period (7 days by default).
  // Returns the newest version when it changed (made by this call, or by another process and learned now:
  // either way a rewrap is due), else null. Vault rotates by itself (auto_rotate_period): there it only looks.
  rotateIfDue(now?: Date): Promise<number | null>;
  // Re-encrypts under the newest version without the plaintext leaving the keyring's API.
  rewrap(ciphertext: string, context?: string): Promise<string>;
  // True when the ciphertext was made with a version older than the newest one this keyring knows.
  needsRewrap(ciphertext: string): boolean;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type KeyringFailure = 'config' | 'malformed' | 'unknown-version' | 'authentication';

// Failures of our own data or configuration (not of a dependency): never retryable, and the message names
// the cause without any plaintext, key or token in it.
export class KeyringError extends AppError {
  readonly reason: KeyringFailure;
  constructor(reason: KeyringFailure, message: string) {
    super('INTERNAL', message, { category: 'fatal' });
    this.name = 'KeyringError';
    this.reason = reason;
  }
}

export const isKeyringError = (err: unknown): err is KeyringError => err instanceof KeyringError;

// The one spelling of a secret's associated data, shared by the store (writes) and the rewrap job (reads).
export const secretContext = (connectionId: string, name: string): string => `connection:${connectionId}:${name}`;

// The version inside a ciphertext of either adapter, or null when it is not one of ours.
export function ciphertextVersion(ciphertext: string): { scheme: 'local' | 'vault'; version: number } | null {
  const m = /^(local|vault):v(\d{1,9}):/.exec(ciphertext);
  return m ? { scheme: m[1] as 'local' | 'vault', version: Number(m[2]) } : null;
}
