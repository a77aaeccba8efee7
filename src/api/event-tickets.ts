import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** What a ticket stands for: the caller who asked for it and when their token expires (epoch ms). */
export interface TicketGrant { sub: string; tokenExpiresAt?: number }

/**
 * Single-use tickets for opening /v1/events without the JWT in the URL. A ticket is 256 random
 * bits, lives `ttlMs` and is gone once taken (by the first upgrade that presents it, even a failed one).
 */
export interface TicketStore {
  issue(grant: TicketGrant): Promise<{ ticket: string; expiresAt: string }>;
  /** The grant, once; undefined for an unknown, used or expired ticket. */
  take(ticket: string): Promise<TicketGrant | undefined>;
}

export const ticketTtlMs = 30_000;
// Tickets are base64url of 32 bytes; anything else is not looked up at all.
const ticketShape = /^[\w-]{43}$/;
const newTicket = () => randomBytes(32).toString('base64url');

/**
 * One process: a Map. Bounded: the oldest ticket goes when `max` are live (each costs its caller one
 * request of the `status` budget, so one caller holds at most ~500 within the 30 s).
 */
export function memoryTickets(ttlMs = ticketTtlMs, max = 100_000): TicketStore {
  const live = new Map<string, TicketGrant & { until: number }>();
  return {
    async issue(grant) {
      const now = Date.now();
      for (const [t, g] of live) {
        if (g.until > now && live.size < max) break; // insertion order: the rest are younger
        live.delete(t);
      }
      const ticket = newTicket();
      live.set(ticket, { ...grant, until: now + ttlMs });
      return { ticket, expiresAt: new Date(now + ttlMs).toISOString() };
    },
    async take(ticket) {
      if (!ticketShape.test(ticket)) return undefined;
      const g = live.get(ticket);
      live.delete(ticket);
      if (!g || g.until <= Date.now()) return undefined;
      return g.tokenExpiresAt === undefined ? { sub: g.sub } : { sub: g.sub, tokenExpiresAt: g.tokenExpiresAt };
    },
  };
}

/**
 * Several replicas: Redis, so a ticket issued by one replica opens a socket on another (no sticky
 * sessions needed). GETDEL makes taking it atomic: two upgrades racing with one ticket, one wins.
 */
export function redisTickets(redis: Redis, ttlMs = ticketTtlMs, prefix = 'evt:ticket:'): TicketStore {
  return {
    async issue(grant) {
      const ticket = newTicket();
      await redis.set(prefix + ticket, JSON.stringify(grant), 'PX', ttlMs);
      return { ticket, expiresAt: new Date(Date.now() + ttlMs).toISOString() };
    },
    async take(ticket) {
      if (!ticketShape.test(ticket)) return undefined;
      const raw = await redis.getdel(prefix + ticket);
      if (raw === null) return undefined;
      const g = JSON.parse(raw) as TicketGrant;
      return typeof g.sub === 'string' ? g : undefined;
    },
  };
}
