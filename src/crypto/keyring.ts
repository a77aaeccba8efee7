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
    super('INTERNAL', message);
    this.name = 'KeyringError';
    this.reason = reason;
  }
  override get retryable(): boolean {
    return false;
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

export interface KeyringOptions {
  // Vault transit is used when vaultAddr is set; otherwise the local keyring.
  vaultAddr?: string;
  vaultToken?: string;
  vaultRoleId?: string;
  vaultSecretId?: string;
  vaultNamespace?: string;
  vaultTransitMount?: string; // default "transit"
  vaultKeyName?: string; // default "integration-service"
  // Local keyring: master key (KEYRING_KEY: base64 of 32 bytes, or the raw 32 bytes) and/or the keyring file.
  // With a file the keyring is file-backed (the key, when given, wraps the data keys); with only a key it is
  // HKDF-derived. There is deliberately no automatic fallback from file to derived when the file cannot be
  // written: both number their versions from 1, so switching modes would orphan every stored ciphertext.
  keyringKey?: string | Buffer;
  keyringFile?: string;
  rotateDays?: number; // default 7
  now?: () => number; // injected clock (ms since epoch)
}

// Picks the adapter from configuration. The adapters are imported lazily so that a local deployment never
// loads node-vault (and axios) at all.
export async function openKeyring(opts: KeyringOptions): Promise<Keyring> {
  if (opts.vaultAddr) {
    const { VaultKeyring } = await import('./vault-keyring.ts');
    return VaultKeyring.open({
      addr: opts.vaultAddr,
      token: opts.vaultToken,
      roleId: opts.vaultRoleId,
      secretId: opts.vaultSecretId,
      namespace: opts.vaultNamespace,
      mount: opts.vaultTransitMount,
      keyName: opts.vaultKeyName,
      now: opts.now,
    });
  }
  const { LocalKeyring } = await import('./local-keyring.ts');
  return LocalKeyring.open({
    masterKey: opts.keyringKey,
    // With neither a key nor a file, a generated keyring file under ./data keeps secrets readable across restarts.
    file: opts.keyringFile ?? (opts.keyringKey ? undefined : 'data/keyring.json'),
    rotateDays: opts.rotateDays,
    now: opts.now,
  });
}
