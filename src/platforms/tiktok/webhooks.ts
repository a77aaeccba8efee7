import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../../errors.ts';
import type { PlatformWebhooks, WebhookBatch } from '../adapter.ts';

// TikTok webhooks into POST /v1/platform-webhooks/tiktok (developers.tiktok.com "Webhooks Overview",
// "Webhook Events"). A delivery is JSON `{client_key, event, create_time, user_openid, content}` (content
// is itself a JSON string) signed `TikTok-Signature: t=<unix seconds>,s=<hex HMAC-SHA256>` where the
// HMAC key is the app's client secret and the signed payload is "<t>.<raw body>". No GET handshake:
// the URL is registered in the developer portal.
//
// `authorization.removed` (the creator disconnected the app, or TikTok revoked it; content.reason
// 0–5) names the creator by open_id: every connection to that creator goes to error
// PLATFORM_AUTH_REVOKED. Other events (video.publish.*, …) are acknowledged and ignored: the driver
// already polls status/fetch for its posts.

/** Signatures older (or newer) than this are refused: a captured delivery cannot be replayed later. */
export const SIGNATURE_TOLERANCE_S = 5 * 60;

export interface TiktokWebhookOptions {
  clientSecret: string;
  clientKey: string;
  now?: () => number;
}

export function tiktokSignatureValid(secret: string, raw: Buffer, header: string | string[] | undefined, nowMs: number): boolean {
  if (!secret || typeof header !== 'string') return false;
  const parts = Object.fromEntries(header.split(',').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [p.trim(), ''] : [p.slice(0, i).trim(), p.slice(i + 1).trim()];
  }));
  const t = parts.t;
  const s = parts.s;
  if (!t || !/^\d{1,12}$/.test(t) || !s || !/^[0-9a-f]{64}$/i.test(s)) return false;
  if (Math.abs(nowMs / 1000 - Number(t)) > SIGNATURE_TOLERANCE_S) return false;
  const want = createHmac('sha256', secret).update(`${t}.`).update(raw).digest();
  return timingSafeEqual(want, Buffer.from(s, 'hex'));
}

/** An authentic body's events; VALIDATION_ERROR when it is not TikTok's shape. */
export function parseTiktokWebhook(raw: Buffer, clientKey: string): WebhookBatch {
  const bad = (why: string) => new AppError('VALIDATION_ERROR', `not a TikTok webhook: ${why}`);
  let body: any;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw bad('the body is not JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('the body is not an object');
  if (typeof body.event !== 'string' || !body.event) throw bad('event is missing');
  if (typeof body.user_openid !== 'string' || !body.user_openid || body.user_openid.length > 200) throw bad('user_openid is missing');
  // Signed with our secret but for another client key: not ours to act on.
  if (body.client_key !== undefined && body.client_key !== clientKey) throw bad('client_key is not this app\'s');
  const batch: WebhookBatch = { statuses: [], received: [] };
  if (body.event === 'authorization.removed') {
    let reason: unknown;
    try {
      reason = typeof body.content === 'string' ? JSON.parse(body.content)?.reason : body.content?.reason;
    } catch {
      throw bad('content is not JSON');
    }
    batch.revoked = [{ accountId: body.user_openid, reason: typeof reason === 'number' || typeof reason === 'string' ? String(reason) : 'unknown' }];
  }
  return batch;
}

export function tiktokWebhooks(o: TiktokWebhookOptions): PlatformWebhooks {
  const now = o.now ?? Date.now;
  return {
    challenge: () => undefined, // TikTok has no verification handshake
    authentic: (raw, headers) => tiktokSignatureValid(o.clientSecret, raw, headers['tiktok-signature'], now()),
    parse: (raw) => parseTiktokWebhook(raw, o.clientKey),
  };
}
