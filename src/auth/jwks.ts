import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { AppError } from '../errors.ts';

// A JWKS key source for @hapi/jwt's `keys: [fn]` slot. @hapi/jwt's own `{ uri }` loader accepts RSA
// keys only; API.md also allows ES256, so this one reads RSA and EC keys through node:crypto's JWK
// import and keeps @hapi/jwt for everything else (alg/kid matching, signature, claims).

export interface JwksKey { key: KeyObject; algorithms: string[]; kid?: string }
export interface JwksOptions {
  /** Keys are refetched after this long (identity providers rotate daily at most). */
  ttlMs?: number;
  /** A token with an unknown `kid` triggers a refetch at most this often, so forged kids cannot hammer the IdP. */
  minRefreshMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

const allowed = new Set(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512']);
const curveAlg: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

function toKey(jwk: JsonWebKey & { kid?: string; alg?: string; use?: string }): JwksKey | undefined {
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  const algorithms = jwk.alg ? [jwk.alg]
    : jwk.kty === 'RSA' ? ['RS256', 'RS384', 'RS512']
      : jwk.kty === 'EC' && jwk.crv ? [curveAlg[jwk.crv] ?? ''] : [];
  const usable = algorithms.filter((a) => allowed.has(a));
  if (usable.length === 0) return undefined;
  try {
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    return jwk.kid ? { key, algorithms: usable, kid: jwk.kid } : { key, algorithms: usable };
  } catch {
    return undefined; // a malformed entry must not hide the good ones
  }
}

const unavailable = (cause?: unknown) => new AppError('DEPENDENCY_UNAVAILABLE', 'identity provider keys are unavailable', { cause });

/** Returns `(artifacts) => keys` for @hapi/jwt; throws DEPENDENCY_UNAVAILABLE only when no keys were ever loaded. */
export function jwksKeys(url: string, opts: JwksOptions = {}) {
  const ttlMs = opts.ttlMs ?? 10 * 60_000;
  const minRefreshMs = opts.minRefreshMs ?? 30_000;
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const now = opts.now ?? Date.now;
  let keys: JwksKey[] | undefined;
  let fetchedAt = -Infinity;
  let failedAt = -Infinity;
  let inflight: Promise<void> | undefined;

  const refresh = () => (inflight ??= (async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
      const body = (await res.json()) as { keys?: unknown };
      const loaded = Array.isArray(body.keys) ? body.keys.map((k) => toKey(k as JsonWebKey)).filter((k): k is JwksKey => !!k) : [];
      if (loaded.length === 0) throw new Error('JWKS holds no usable signing keys');
      keys = loaded;
    } catch (err) {
      failedAt = now();
      throw err;
    } finally {
      fetchedAt = now();
      inflight = undefined;
    }
  })());

  return async (artifacts: { decoded: { header: { kid?: string } } }): Promise<JwksKey[]> => {
    const kid = artifacts.decoded.header.kid;
    const stale = now() - fetchedAt > ttlMs;
    const unknownKid = kid !== undefined && keys !== undefined && !keys.some((k) => k.kid === kid);
    // With no keys at all, a dead IdP is retried at most once a second instead of once per request.
    if (keys === undefined && now() - failedAt < 1_000) throw unavailable();
    if (keys === undefined || stale || (unknownKid && now() - fetchedAt > minRefreshMs)) {
      try {
        await refresh();
      } catch (err) {
        // Stale keys keep verifying while the IdP is down; without any, callers get a retryable 503.
        if (keys === undefined) throw unavailable(err);
      }
    }
    return keys ?? [];
  };
}
