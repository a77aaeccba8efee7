import { createHmac, randomBytes } from 'node:crypto';

// Standard Webhooks v1 signatures: `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`,
// where the key is the base64 after `whsec_`. Several signatures are separated by spaces (during a
// rotation both secrets sign), and a receiver accepts the request when any of them verifies.

const prefix = 'whsec_';
// 32 random bytes (256 bits): the HMAC-SHA256 block gains nothing from more; the spec asks 24..64.
const secretBytes = 32;

/** A fresh secret, shown to its owner once: `whsec_` + base64 of 32 random bytes. */
export const newSecret = (): string => `${prefix}${randomBytes(secretBytes).toString('base64')}`;

/** The space-separated webhook-signature header value for these secrets. */
export function signatureHeader(secrets: readonly string[], id: string, timestamp: number, body: string): string {
  return secrets.map((secret) => {
    const key = Buffer.from(secret.startsWith(prefix) ? secret.slice(prefix.length) : secret, 'base64');
    return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
  }).join(' ');
}
