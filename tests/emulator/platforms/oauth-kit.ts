import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PlatformFault } from './types.ts';

// Pieces both OAuth platforms share: opaque tokens, PKCE checks, redirect URIs, the per-platform
// fault switchboard (`POST /faults {type, target: '<platform>'}`).

export const opaque = (prefix: string, bytes = 24): string => prefix + randomBytes(bytes).toString('base64url');

/**
 * RFC 7636: S256 is BASE64URL(SHA256(verifier)), `plain` compares as is. TikTok's desktop Login Kit
 * documents a hex SHA-256 challenge instead of base64url, so `acceptHex` admits that form as well.
 */
export function pkceMatches(challenge: string, method: string, verifier: string, acceptHex = false): boolean {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) return false;
  if (method === 'plain') return challenge === verifier;
  const digest = createHash('sha256').update(verifier, 'ascii').digest();
  return challenge === digest.toString('base64url') || (acceptHex && challenge.toLowerCase() === digest.toString('hex'));
}

/** Absolute http(s) URI without a fragment: what both providers accept as a redirect URI. */
export function validRedirectUri(uri: string | undefined): uri is string {
  if (!uri) return false;
  try {
    const u = new URL(uri);
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.hash;
  } catch {
    return false;
  }
}

export function withQuery(uri: string, params: Record<string, string | undefined>): string {
  const u = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}

export type FaultHit = 'http-5xx' | 'rate-limit' | undefined;

/** Faults armed through the control API; each API/upload request asks `next()` before doing its work. */
export class FaultBox {
  private serverErrors = 0;
  private rateLimits = 0;
  private latencyS = 0;

  arm(f: PlatformFault): void {
    const count = f.count ?? 1;
    if (f.type === 'http-5xx') this.serverErrors += count;
    else if (f.type === 'rate-limit') this.rateLimits += count;
    else if (f.type === 'latency') this.latencyS = f.seconds ?? 1;
    else throw new Error(`unknown fault type ${String((f as { type: unknown }).type)}`);
  }

  async next(): Promise<FaultHit> {
    if (this.latencyS > 0) await sleep(this.latencyS * 1000);
    if (this.serverErrors > 0) {
      this.serverErrors--;
      return 'http-5xx';
    }
    if (this.rateLimits > 0) {
      this.rateLimits--;
      return 'rate-limit';
    }
    return undefined;
  }

  clear(): void {
    this.serverErrors = 0;
    this.rateLimits = 0;
    this.latencyS = 0;
  }
}

/** Counts within a moving window of `windowMs` on the emulator clock (TikTok's per-token minute limits). */
export class SlidingWindow {
  private hits = new Map<string, number[]>();

  constructor(private readonly windowMs: number) {}

  /** Records a hit for `key` unless `limit` hits already fall in the window; returns ms until one leaves. */
  take(key: string, limit: number, now: number): { ok: true } | { ok: false; retryAfterMs: number } {
    const recent = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (recent.length >= limit) {
      this.hits.set(key, recent);
      return { ok: false, retryAfterMs: recent[0]! + this.windowMs - now };
    }
    recent.push(now);
    this.hits.set(key, recent);
    return { ok: true };
  }

  count(key: string, now: number): number {
    return (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs).length;
  }

  clear(): void {
    this.hits.clear();
  }
}
