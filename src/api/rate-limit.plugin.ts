import { isIP } from 'node:net';
import type { Plugin, RequestRoute } from '@hapi/hapi';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { isForwarded } from '../cluster/forward.ts';
import { AppError } from '../errors.ts';
import { addressList, plainAddress } from '../net/address-list.ts';
import { metrics } from '../observability/metrics.ts';
import { setHeader } from './request-log.plugin.ts';

/**
 * Per-caller budgets (API.md): `connect` login steps, `send` messages, `status` reads (every GET and
 * so HEAD under /v1 and /admin, and opening the live-events socket), `manage` the other changes:
 * adding chats (a platform call), deletions, operator restarts.
 */
export type RateLimitGroup = 'connect' | 'send' | 'status' | 'manage';
export const rateLimitGroups: readonly RateLimitGroup[] = ['connect', 'send', 'status', 'manage'];

declare module '@hapi/hapi' {
  interface PluginSpecificConfiguration {
    /**
     * Opt a route into a group; `false` takes it out of every limit, per address included (probes,
     * scrapes, internal routes). Routes without it: GETs under /v1 and /admin count in `status`.
     */
    rateLimit?: { group: RateLimitGroup } | false;
  }
  interface RequestApplicationState {
    rateLimit?: { limit: number; remaining: number; resetSec: number };
  }
  interface PluginProperties {
    'integration-rate-limit': RateLimits;
  }
}

/** What other plugins use for work outside Hapi's request cycle (the WebSocket upgrade). */
export interface RateLimits {
  /** Counts one request of `sub` in `group`; throws AppError RATE_LIMITED with `retryAfter`. */
  take(group: RateLimitGroup, sub: string): Promise<void>;
  /** Counts one request from a client address (see `clientAddress`); throws AppError RATE_LIMITED. */
  takeAddress(address: string): Promise<void>;
  /** The client's address: the peer, or behind a trusted proxy the last untrusted X-Forwarded-For hop. */
  clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined): string;
}

export interface RateLimitOptions {
  /** Shared counters across replicas; without it each process counts alone. */
  redis?: Redis;
  /** Requests per caller per minute (API.md: 10, 100, 1000; `manage` 60). */
  connect: number;
  send: number;
  status: number;
  manage?: number;
  /** Requests per client address per minute, before authentication; 0 turns it off. Default 6000. */
  perAddress?: number;
  /** Proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed. Default none. */
  trustedProxies?: string[];
}

const windowSec = 60;
const defaults = { manage: 60, perAddress: 6000 };

function limiterFor(name: string, points: number, redis?: Redis): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ keyPrefix: `rl:${name}`, points, duration: windowSec });
  if (!redis) return memory;
  // While Redis is down the in-process insurance limiter answers, so the API keeps serving (each
  // replica then counts on its own: N replicas allow up to N× the limit until Redis is back).
  // `rejectIfRedisNotReady` switches to it at once instead of waiting on ioredis' reconnect queue.
  return new RateLimiterRedis({
    storeClient: redis, keyPrefix: `rl:${name}`, points, duration: windowSec,
    rejectIfRedisNotReady: true, insuranceLimiter: memory,
  });
}

const apiRoute = /^\/(v1|admin)(\/|$)/;

/**
 * The per-caller group of a route: its `plugins.rateLimit` setting, else `status` for a GET under
 * /v1 or /admin (a HEAD request runs the GET route and counts the same), else undefined: no group.
 * `false`: exempt from every limit.
 */
export function rateLimitGroupOf(route: Pick<RequestRoute, 'method' | 'path' | 'settings'>): RateLimitGroup | false | undefined {
  const setting = route.settings.plugins?.rateLimit;
  if (setting === false) return false;
  if (setting) return setting.group;
  return route.method === 'get' && apiRoute.test(route.path) ? 'status' : undefined;
}

const internals = {
  refusal(rejection: unknown, message: string): AppError {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    const resetSec = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
    return new AppError('RATE_LIMITED', message, { retryAfter: resetSec });
  },
};

/**
 * The per-address limiter key: IPv4 as is, IPv6 by its /64, the smallest block one subscriber is
 * given (RFC 6177), so one host cannot walk through 2^64 addresses of its own to dodge the limit.
 */
export function addressKey(address: string): string {
  const a = plainAddress(address);
  if (isIP(a) !== 6) return a;
  const [head = '', tail] = a.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const width = (gs: string[]) => gs.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0); // a dotted IPv4 tail is two groups
  const h = groups(head);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - width(h) - width(groups(tail))).fill('0'), ...groups(tail)];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/**
 * Per-address limit on `onRequest` (before the token is checked and before the body is read, so
 * floods without a valid token are refused cheaply), then per-caller limits by group on
 * `onPostAuth`, when `sub` is known. A window opens at the first request of a key and lasts 60 s
 * (rate-limiter-flexible's fixed window per key).
 */
export const rateLimitPlugin: Plugin<RateLimitOptions> = {
  name: 'integration-rate-limit',
  register(server, opts) {
    const points: Record<RateLimitGroup, number> = { connect: opts.connect, send: opts.send, status: opts.status, manage: opts.manage ?? defaults.manage };
    const limiters = Object.fromEntries(rateLimitGroups.map((g) => [g, limiterFor(g, points[g], opts.redis)])) as Record<RateLimitGroup, RateLimiterAbstract>;
    const perAddress = opts.perAddress ?? defaults.perAddress;
    const addressLimiter = perAddress > 0 ? limiterFor('ip', perAddress, opts.redis) : undefined;
    const trusted = opts.trustedProxies?.length ? addressList(opts.trustedProxies) : undefined;
    const isTrusted = (a: string) => trusted !== undefined && isIP(a) !== 0 && trusted.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');

    const limits: RateLimits = {
      async take(group, sub) {
        try {
          await limiters[group].consume(sub);
        } catch (rejection) {
          metrics.rateLimited.inc({ group });
          throw internals.refusal(rejection, `limit of ${points[group]} ${group} requests per minute reached`);
        }
      },
      async takeAddress(address) {
        if (!addressLimiter) return;
        try {
          await addressLimiter.consume(addressKey(address));
        } catch (rejection) {
          metrics.rateLimited.inc({ group: 'address' });
          throw internals.refusal(rejection, `limit of ${perAddress} requests per minute from one address reached`);
        }
      },
      clientAddress(peer, forwardedFor) {
        const direct = plainAddress(peer ?? '');
        if (!isTrusted(direct)) return direct;
        // Walk from the right: each trusted proxy appended the address it saw; the first hop no
        // trusted proxy vouches for is the client. Hops further left are whatever the client wrote.
        const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor ?? '').split(',').map(plainAddress).filter(Boolean);
        for (let i = hops.length - 1; i >= 0; i--) {
          if (!isIP(hops[i]!)) return direct;
          if (!isTrusted(hops[i]!)) return hops[i]!;
        }
        return hops[0] ?? direct;
      },
    };
    server.expose(limits);

    // On `onRequest`, before the route's own lifecycle: a path no route matches (Hapi answers those 404
    // without running route extensions) counts too. The route is looked up here only for its exemption.
    // Injected requests (server.inject: the token check of the WebSocket upgrade, tests) come from no
    // network address and are not counted.
    server.ext('onRequest', async (request, h) => {
      // `isInjected` is documented (Hapi 21 request properties) but missing from its types.
      if (!addressLimiter || (request as { isInjected?: boolean }).isInjected) return h.continue;
      const method = request.method === 'head' ? 'get' : request.method;
      let route: RequestRoute | null = null;
      try {
        route = server.match(method, request.path);
      } catch {
        // a path Hapi cannot route (it answers 400 itself): counted
      }
      if (route && rateLimitGroupOf(route) === false) return h.continue;
      await limits.takeAddress(limits.clientAddress(request.info.remoteAddress, request.headers['x-forwarded-for'] as string | undefined));
      return h.continue;
    });

    server.ext('onPostAuth', async (request, h) => {
      const group = rateLimitGroupOf(request.route);
      const sub = request.auth.credentials?.user?.sub;
      // A call a peer node passed on (src/api/forward.plugin.ts) was counted where it came in.
      if (!group || !sub || isForwarded(request.headers)) return h.continue;
      const limit = points[group];
      try {
        const res = await limiters[group].consume(sub);
        request.app.rateLimit = { limit, remaining: res.remainingPoints, resetSec: Math.ceil(res.msBeforeNext / 1000) };
        return h.continue;
      } catch (rejection) {
        const refused = internals.refusal(rejection, `limit of ${limit} ${group} requests per minute reached`);
        request.app.rateLimit = { limit, remaining: 0, resetSec: refused.retryAfter! };
        metrics.rateLimited.inc({ group });
        throw refused;
      }
    });

    server.ext('onPreResponse', (request, h) => {
      const state = request.app.rateLimit;
      if (state) {
        setHeader(request.response, 'ratelimit-limit', String(state.limit));
        setHeader(request.response, 'ratelimit-remaining', String(state.remaining));
        setHeader(request.response, 'ratelimit-reset', String(state.resetSec));
      }
      return h.continue;
    });
  },
};
