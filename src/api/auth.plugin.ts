import Jwt from '@hapi/jwt';
import type { Plugin, ReqRef, Request, Server } from '@hapi/hapi';
import { AppError } from '../errors.ts';
import { jwksKeys } from '../auth/jwks.ts';

declare module '@hapi/hapi' {
  interface UserCredentials {
    sub: string;
  }
}

/** The strategy every `/v1` and `/admin` route uses; it is also the server's default. */
export const authStrategy = 'jwt';

export interface AuthOptions {
  /** HS256 shared secret (JWT_SECRET). */
  secret?: string;
  /** RS256/ES256 keys from this JWKS URL (JWT_JWKS_URL). */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** JWT_MAX_LIFETIME_S: the longest lifetime (`exp - iat`, or `exp - now` without `iat`) accepted. Default 24 h. */
  maxLifetimeSec?: number;
}

export interface Caller { sub: string; scopes: string[]; isAdmin: boolean }

const adminRoute = /^\/admin(\/|$)/;
// Clocks of the IdP and this host may drift; 30 s is the usual tolerance.
const skewSec = 30;
export const defaultMaxLifetimeSec = 86_400;
const callerRoute = '/_internal/caller';

// `sub` names the owner of every row. Lone surrogates ('\ud800', '\udc00') all reach Postgres as
// U+FFFD, so two callers became one owner; a NUL made every query of the caller throw (500); invalid
// UTF-8 bytes in the payload decode to U+FFFD the same way. Such tokens are refused (401).
const malformedSub = /[\p{Cc}\p{Cs}]/u;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const isUtf8 = (base64: string): boolean => {
  try {
    strictUtf8.decode(Buffer.from(base64, 'base64'));
    return true;
  } catch {
    return false;
  }
};

const scopesOf = (claim: unknown): string[] =>
  typeof claim === 'string' ? claim.split(' ').filter(Boolean)
    : Array.isArray(claim) ? claim.filter((s): s is string => typeof s === 'string' && s.length > 0) : [];

/** The authenticated caller of a request; throws UNAUTHORIZED on a route without authentication. */
export function callerOf<Refs extends ReqRef>(request: Request<Refs>): Caller {
  const sub = request.auth.credentials?.user?.sub;
  if (!request.auth.isAuthenticated || !sub) throw new AppError('UNAUTHORIZED', 'authentication required');
  const scopes = request.auth.credentials.scope ?? [];
  return { sub, scopes, isAdmin: scopes.includes('admin') };
}

/**
 * Authenticates a raw token with exactly the rules of the `jwt` strategy, for callers outside Hapi's
 * request cycle (the WebSocket upgrade of /v1/events reads `Authorization` or `?access_token=`).
 * Throws AppError UNAUTHORIZED ('token expired' / 'invalid token') or DEPENDENCY_UNAVAILABLE.
 */
export async function authenticateToken(server: Server, token: string): Promise<Caller> {
  const res = await server.inject({ method: 'GET', url: callerRoute, headers: { authorization: `Bearer ${token}` }, allowInternals: true });
  if (res.statusCode === 200) return res.result as Caller;
  const { code, message } = (res.result as { error: { code: string; message: string } }).error;
  throw new AppError(code === 'DEPENDENCY_UNAVAILABLE' ? code : 'UNAUTHORIZED', message);
}

/**
 * `exp` a finite number no further than the maximum lifetime away (from `iat`, or from now without
 * it; `1e999` parses as Infinity and once passed every check); `iat`, when present, finite and not
 * in the future beyond the clock skew (a token "issued tomorrow" would stretch `exp - iat`).
 */
function lifetimeOk(exp: unknown, iat: unknown, maxLifetimeSec: number, nowSec: number): boolean {
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return false;
  if (iat === undefined) return exp - nowSec <= maxLifetimeSec + skewSec;
  if (typeof iat !== 'number' || !Number.isFinite(iat) || iat > nowSec + skewSec) return false;
  return exp - iat <= maxLifetimeSec;
}

export const authPlugin: Plugin<AuthOptions> = {
  name: 'integration-auth',
  async register(server, opts) {
    if (!opts.secret && !opts.jwksUrl) throw new Error('auth needs a JWT secret or a JWKS URL');
    const maxLifetimeSec = opts.maxLifetimeSec ?? defaultMaxLifetimeSec;
    await server.register(Jwt);
    // Algorithms are pinned per key: an HS256 secret never verifies an RS256/ES256 header (the
    // classic public-key-as-HMAC-secret confusion) and `alg: none` matches no key at all.
    const keys: unknown[] = [];
    if (opts.secret) keys.push({ key: opts.secret, algorithms: ['HS256'] });
    if (opts.jwksUrl) keys.push(jwksKeys(opts.jwksUrl));
    server.auth.strategy(authStrategy, 'jwt', {
      keys,
      verify: {
        aud: opts.audience ?? false,
        iss: opts.issuer ?? false,
        sub: false,
        nbf: true,
        exp: true,
        maxAgeSec: 0,
        timeSkewSec: skewSec,
      },
      validate: (artifacts: { decoded: { header: Record<string, unknown>; payload: Record<string, unknown> }; raw: { payload: string } }) => {
        const { sub, exp, iat, scope } = artifacts.decoded.payload;
        if (typeof sub === 'string' && (malformedSub.test(sub) || !isUtf8(artifacts.raw.payload))) return { isValid: false };
        // @hapi/jwt checks `exp` only when present; API.md requires it, and a caller is its `sub`.
        if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255) return { isValid: false };
        if (!lifetimeOk(exp, iat, maxLifetimeSec, Date.now() / 1000)) return { isValid: false };
        // RFC 7515 §4.1.11: a header extension listed in `crit` must be understood or the token
        // rejected; this service implements none, so any `crit` is refused.
        if (artifacts.decoded.header.crit !== undefined) return { isValid: false };
        return { isValid: true, credentials: { user: { sub }, scope: scopesOf(scope) } };
      },
    });
    server.auth.default(authStrategy);

    // Reachable through server.inject only (isInternal): the one verification path for authenticateToken.
    server.route({
      method: 'GET', path: callerRoute,
      options: { isInternal: true, plugins: { rateLimit: false, requestLog: { level: 'debug' } } },
      handler: (request) => callerOf(request),
    });

    // Enforced by path rather than per-route `auth.access.scope`, so an /admin route registered by
    // any plugin is closed to non-admins even if its author forgot the scope (or disabled auth).
    server.ext('onPostAuth', (request, h) => {
      if (adminRoute.test(request.route.path) && !request.auth.credentials?.scope?.includes('admin')) {
        throw new AppError('FORBIDDEN', 'this route needs the admin scope');
      }
      return h.continue;
    });
  },
};
