import type { Keyring } from '../crypto/keyring.ts';
import type { EndpointRow } from '../store/webhooks.ts';

// Webhook secrets at rest: keyring ciphertexts bound to the endpoint (associated data), like the
// connections' secrets, so a ciphertext copied to another endpoint's row does not decrypt.

export const webhookSecretContext = (endpointId: string): string => `webhook:${endpointId}:secret`;

export const sealSecret = (keyring: Keyring, endpointId: string, secret: string): Promise<string> =>
  keyring.encrypt(secret, webhookSecretContext(endpointId));

/** The secrets that sign now: the current one, and the previous one while its 24 h last. */
export async function signingSecrets(keyring: Keyring, e: Pick<EndpointRow, 'id' | 'secret' | 'previous_secret' | 'previous_expires_at'>, now: Date): Promise<string[]> {
  const out = [await keyring.decrypt(e.secret, webhookSecretContext(e.id))];
  if (e.previous_secret && e.previous_expires_at && e.previous_expires_at > now) {
    out.push(await keyring.decrypt(e.previous_secret, webhookSecretContext(e.id)));
  }
  return out;
}

/** How long the previous secret keeps signing after a rotation: 24 h (API.md). */
export const rotationOverlapMs = 24 * 3_600_000;
