// Keys for one purpose other than encryption: `log-subjects`, the HMAC key of the log pseudonyms
// (src/observability/subjects.ts), and `media-links`, the HMAC key of signed media links
// (src/media/links.ts). Never a data key of the keyring: 32 random bytes made on first use and stored
// in Postgres only as a keyring ciphertext bound to the purpose's name, so every node with the same
// keyring (the same KEYRING_KEY, or the same Vault transit key) reads the same key, key rotations
// leave it unchanged (the rewrap job moves its ciphertext like a secret's), and knowing it opens no
// session or token. Derived from the keyring instead, Vault would have to HMAC with one pinned key
// version, which stops working once old versions are retired.
import { randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import { getPurposeKey, putPurposeKeyOnce } from '../store/purpose-keys.ts';
import { KeyringError, type Keyring } from './keyring.ts';

export type KeyPurpose = 'log-subjects' | 'media-links';

/** The associated data of a purpose key's ciphertext: it opens only as that purpose's key. */
export const purposeContext = (purpose: string): string => `purpose-key:${purpose}`;

const keyBytes = 32;

/** The purpose's key, made and stored (encrypted) the first time any node asks for it. */
export async function purposeKey(sql: postgres.Sql, keyring: Keyring, purpose: KeyPurpose): Promise<Buffer> {
  let ciphertext = await getPurposeKey(sql, purpose);
  if (ciphertext === undefined) {
    const fresh = await keyring.encrypt(randomBytes(keyBytes).toString('base64'), purposeContext(purpose));
    // Two nodes starting together: the first insert wins and both use its key.
    ciphertext = await putPurposeKeyOnce(sql, purpose, fresh);
  }
  const key = Buffer.from(await keyring.decrypt(ciphertext, purposeContext(purpose)), 'base64');
  if (key.length !== keyBytes) throw new KeyringError('malformed', `the stored ${purpose} key is not ${keyBytes} bytes`);
  return key;
}
