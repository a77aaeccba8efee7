import { createHmac, timingSafeEqual } from 'node:crypto';
import type { PlatformWebhooks, WebhookBatch } from '../adapter.ts';

// Webhooks of a Meta app (Webhooks "Getting Started"), the same for WhatsApp, Instagram and Threads:
// GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=… is answered with the challenge when the
// token is ours; each POST carries `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with
// the app secret>`. Meta escapes non-ASCII as \uXXXX before signing, so the raw bytes are what is
// verified, never a re-serialisation.

export interface MetaAppSecrets { appSecret?: string; verifyToken?: string }

const equalText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

function metaChallenge(secrets: MetaAppSecrets, query: Record<string, string | undefined>): string | undefined {
  const token = secrets.verifyToken;
  const given = query['hub.verify_token'];
  const challenge = query['hub.challenge'];
  if (!token || query['hub.mode'] !== 'subscribe' || given === undefined || challenge === undefined) return undefined;
  if (!/^[\w.-]{1,200}$/.test(challenge)) return undefined;
  return equalText(given, token) ? challenge : undefined;
}

function metaSignatureValid(secrets: MetaAppSecrets, raw: Buffer, headers: Record<string, string | string[] | undefined>): boolean {
  if (!secrets.appSecret) return false;
  const given = one(headers['x-hub-signature-256']);
  if (!given || !/^sha256=[0-9a-f]{64}$/i.test(given)) return false;
  const expected = createHmac('sha256', secrets.appSecret).update(raw).digest();
  return timingSafeEqual(Buffer.from(given.slice(7), 'hex'), expected);
}

/** Webhooks of a Meta app (WhatsApp, Instagram, Threads): its verify-token challenge and X-Hub-Signature-256, and `parse`. */
export function metaWebhooks(secrets: MetaAppSecrets, parse: (raw: Buffer) => WebhookBatch): PlatformWebhooks {
  return {
    challenge: (query) => metaChallenge(secrets, query),
    authentic: (raw, headers) => metaSignatureValid(secrets, raw, headers),
    parse,
  };
}
