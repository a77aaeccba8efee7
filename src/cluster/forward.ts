import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.ts';

// Calls that need a connection's live actor (login steps, reconnect, QR, admin restart) are answered
// by the node that holds its shard. A node that does not hold it passes the whole request on over
// POST /internal/forward (src/api/forward.plugin.ts); the owner runs it as if it came in there
// (the caller's own token is checked there again) and the answer goes back unchanged. The internal
// call is signed with HMAC-SHA256 over a timestamp and the body, under a key every node shares.

/** Thrown where the running actor is needed but another node holds the connection's shard. */
export class NotOwnerError extends AppError {
  readonly shard: number;
  constructor(shard: number) {
    super('DEPENDENCY_UNAVAILABLE', 'The connection runs on another node of the cluster; retry shortly', { retryAfter: 1 });
    this.shard = shard;
  }
}

export const signatureHeader = 'x-cluster-signature';
export const timestampHeader = 'x-cluster-timestamp';

// A signed call older (or newer) than this is refused: 30 s covers clock skew between nodes kept by
// NTP (well under 1 s) and a slow hop, while a recorded call cannot be replayed for long.
export const maxSkewMs = 30_000;

/**
 * The forwarding key: CLUSTER_SECRET when set, else derived (HKDF-SHA256) from KEYRING_KEY or,
 * without one, from JWT_SECRET — keys every node of one cluster already shares. Undefined: no forwarding.
 */
export function forwardingKey(s: { clusterSecret?: string; keyringKey?: Buffer; jwtSecret?: string }): Buffer | undefined {
  const ikm = s.clusterSecret !== undefined ? Buffer.from(s.clusterSecret) : s.keyringKey ?? (s.jwtSecret !== undefined ? Buffer.from(s.jwtSecret) : undefined);
  if (!ikm) return undefined;
  return Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), 'integration-service cluster forwarding v1', 32));
}

export function sign(key: Buffer, timestamp: number, body: string): string {
  const digest = createHash('sha256').update(body).digest('hex');
  return `v1=${createHmac('sha256', key).update(`${timestamp}\n${digest}`).digest('hex')}`;
}

/** Whether the signature is this key's over the timestamp and body, and the timestamp is recent. */
export function verify(key: Buffer, timestamp: string | undefined, signature: string | undefined, body: string, now = Date.now()): boolean {
  if (timestamp === undefined || signature === undefined || !/^\d{1,16}$/.test(timestamp)) return false;
  const ts = Number(timestamp);
  if (Math.abs(now - ts) > maxSkewMs) return false;
  const want = Buffer.from(sign(key, ts, body));
  const got = Buffer.from(signature);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** What a forward carries: the caller's request, as the owner should see it. */
export interface ForwardedRequest {
  /** the node it is meant for: a call signed for one node is refused by another */
  node: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: unknown;
}

export interface ForwardedAnswer { status: number; headers: Record<string, string>; body: string }

/** What the owner needs to judge a call as it came in (the token, idempotency, language, trace id). */
export const passOn = ['authorization', 'content-type', 'accept', 'accept-language', 'idempotency-key', 'x-request-id', 'traceparent'];

/** A per-process marker on requests this node re-runs for a peer: they are never forwarded again. */
export const forwardedMarker = randomBytes(16).toString('hex');
export const forwardedHeader = 'x-cluster-forwarded';

/** Whether this request is one a peer passed on (re-run here by POST /internal/forward). */
export const isForwarded = (headers: Record<string, unknown>): boolean => headers[forwardedHeader] === forwardedMarker;

/** Sends one call to a peer's POST /internal/forward; undefined when the peer refused the forward itself. */
export async function callPeer(key: Buffer, peer: { node: string; url: string }, req: Omit<ForwardedRequest, 'node'>, timeoutMs: number): Promise<ForwardedAnswer | undefined> {
  const body = JSON.stringify({ node: peer.node, ...req } satisfies ForwardedRequest);
  const ts = Date.now();
  const r = await fetch(`${peer.url}/internal/forward`, {
    method: 'POST', body, signal: AbortSignal.timeout(timeoutMs),
    headers: { 'content-type': 'application/json', [timestampHeader]: String(ts), [signatureHeader]: sign(key, ts, body) },
  });
  if (r.status !== 200) {
    await r.body?.cancel();
    return undefined;
  }
  return (await r.json()) as ForwardedAnswer;
}
