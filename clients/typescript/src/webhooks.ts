// Outgoing webhooks are signed with Standard Webhooks v1 (API.md): verify them with the library the
// service and its tests use, re-exported so a receiver needs only this package.
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { LiveEvent } from './events.ts';

export { Webhook, WebhookVerificationError };

/** The body of one delivery: `{ type, timestamp, data }`. */
export interface WebhookPayload<T = unknown> { type: string; timestamp: string; data: T }

/**
 * Verifies a delivery and returns its payload; throws WebhookVerificationError on a bad signature,
 * a timestamp more than 5 minutes off, or missing headers. `body` must be the raw bytes as received
 * (a re-serialised JSON object does not verify). `secret` is the `whsec_…` value; during a secret
 * rotation pass both: either verifies.
 */
export function verifyWebhook<T = unknown>(secret: string | string[], body: string | Buffer, headers: Record<string, string | string[] | undefined> | Headers): WebhookPayload<T> {
  const flat: Record<string, string> = {};
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : [headers[name]].flat()[0]) ?? '';
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) flat[name] = get(name);
  const raw = typeof body === 'string' ? body : body.toString('utf8');
  let lastError: unknown;
  for (const s of [secret].flat()) {
    try {
      return new Webhook(s).verify(raw, flat) as WebhookPayload<T>;
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

export type { LiveEvent };
