import type { Plugin, Request } from '@hapi/hapi';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError } from '../errors.ts';
import { metrics } from '../observability/metrics.ts';
import { setHeader } from './request-log.plugin.ts';

export type RateLimitGroup = 'connect' | 'send' | 'status';

declare module '@hapi/hapi' {
  interface PluginSpecificConfiguration {
    /** Opt a route into a group; `false` opts a GET under /v1 out of the default `status` group. */
    rateLimit?: { group: RateLimitGroup } | false;
  }
  interface RequestApplicationState {
    rateLimit?: { limit: number; remaining: number; resetSec: number };
  }
}

export interface RateLimitOptions {
  /** Shared counters across replicas; without it each process counts alone. */
  redis?: Redis;
  /** Requests per caller per minute (API.md: 10, 100, 1000). */
  connect: number;
  send: number;
  status: number;
}

const windowSec = 60;

function limiterFor(group: RateLimitGroup, points: number, redis?: Redis): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ keyPrefix: `rl:${group}`, points, duration: windowSec });
  if (!redis) return memory;
  // While Redis is down the in-process insurance limiter answers, so the API keeps serving (each
  // replica then counts on its own: N replicas allow up to N× the limit until Redis is back).
  // `rejectIfRedisNotReady` switches to it at once instead of waiting on ioredis' reconnect queue.
  return new RateLimiterRedis({
    storeClient: redis, keyPrefix: `rl:${group}`, points, duration: windowSec,
    rejectIfRedisNotReady: true, insuranceLimiter: memory,
  });
}

function groupOf(request: Request): RateLimitGroup | undefined {
  const setting = request.route.settings.plugins?.rateLimit;
  if (setting === false) return undefined;
  if (setting) return setting.group;
  return request.method === 'get' && /^\/v1(\/|$)/.test(request.route.path) ? 'status' : undefined;
}

/**
 * Per-caller limits by group. Runs on `onPostAuth`, when `sub` is known. A window opens at a
 * caller's first request in a group and lasts 60 s (rate-limiter-flexible's fixed window per key).
 */
export const rateLimitPlugin: Plugin<RateLimitOptions> = {
  name: 'integration-rate-limit',
  register(server, opts) {
    const groups: RateLimitGroup[] = ['connect', 'send', 'status'];
    const limiters = Object.fromEntries(groups.map((g) => [g, limiterFor(g, opts[g], opts.redis)])) as Record<RateLimitGroup, RateLimiterAbstract>;

    server.ext('onPostAuth', async (request, h) => {
      const group = groupOf(request);
      const sub = request.auth.credentials?.user?.sub;
      if (!group || !sub) return h.continue;
      const limit = opts[group];
      try {
        const res = await limiters[group].consume(sub);
        request.app.rateLimit = { limit, remaining: res.remainingPoints, resetSec: Math.ceil(res.msBeforeNext / 1000) };
        return h.continue;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        const resetSec = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        request.app.rateLimit = { limit, remaining: 0, resetSec };
        metrics.rateLimited.inc({ group });
        throw new AppError('RATE_LIMITED', `limit of ${limit} ${group} requests per minute reached`, { retryAfter: resetSec });
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
