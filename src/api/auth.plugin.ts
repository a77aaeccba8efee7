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
}

export interface Caller { sub: string; scopes: string[]; isAdmin: boolean }

const adminRoute = /^\/admin(\/|$)/;
const callerRoute = '/_internal/caller';

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

export const authPlugin: Plugin<AuthOptions> = {
  name: 'integration-auth',
  async register(server, opts) {
    if (!opts.secret && !opts.jwksUrl) throw new Error('auth needs a JWT secret or a JWKS URL');
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
        // Clocks of the IdP and this host may drift; 30 s is the usual tolerance.
        timeSkewSec: 30,
      },
      validate: (artifacts: { decoded: { payload: Record<string, unknown> } }) => {
        const { sub, exp, scope } = artifacts.decoded.payload;
        // @hapi/jwt checks `exp` only when present; API.md requires it, and a caller is its `sub`.
        if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255 || typeof exp !== 'number') return { isValid: false };
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
