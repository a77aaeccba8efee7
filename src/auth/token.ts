import Jwt from '@hapi/jwt';

export interface MintOptions {
  secret: string;
  sub: string;
  scopes?: string[];
  /** Lifetime; the API refuses tokens without `exp`, so there is always one. */
  ttlSeconds?: number;
  issuer?: string;
  audience?: string;
  /** Epoch ms, for tests. */
  now?: number;
}

/** An HS256 JWT the control plane accepts: `sub`, `scope` (space-separated), `iat`, `exp`, and `iss`/`aud` when given. */
export function mintToken({ secret, sub, scopes = [], ttlSeconds = 3600, issuer, audience, now }: MintOptions): string {
  if (!sub) throw new Error('sub is required');
  if (!(ttlSeconds > 0)) throw new Error('ttlSeconds must be positive');
  const payload: Record<string, unknown> = { sub };
  if (scopes.length > 0) payload.scope = scopes.join(' ');
  if (issuer) payload.iss = issuer;
  if (audience) payload.aud = audience;
  return Jwt.token.generate(payload, { key: secret, algorithm: 'HS256' }, { ttlSec: Math.floor(ttlSeconds), ...(now !== undefined && { now }) });
}
