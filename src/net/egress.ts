import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector, fetch, type Dispatcher, type RequestInit, type Response } from 'undici';
import { AppError } from '../errors.ts';

// Outgoing HTTP to addresses a caller chose (media URLs today, the caller's webhooks next): the
// guard against server-side request forgery. A URL must be https, and the address the socket is
// about to connect to — after DNS, at connect time, so a name that resolves differently later
// (DNS rebinding) is caught — must be public unicast: never loopback, private (RFC 1918, IPv6 ULA),
// link-local (169.254/16, where cloud metadata lives), CGNAT (100.64/10), multicast, reserved, or
// an IPv6 form that embeds one of those (IPv4-mapped, NAT64, 6to4, Teredo). Hosts named in
// EGRESS_ALLOW_HOSTS (host or host:port) may use http and any address: development and tests.
// A refusal is an AppError EGRESS_FORBIDDEN thrown before any connection is made.

/** dns.lookup's shape (the `all` form is what Node's happy-eyeballs connect asks for). */
export type Lookup = (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => void;

export interface EgressPolicy {
  /** EGRESS_ALLOW_HOSTS entries: `host` (any port) or `host:port`; hosts are compared case-insensitively. */
  allowHosts?: readonly string[];
  /** Name resolution (tests give a fixed table); default dns.lookup. */
  lookup?: Lookup;
  /** TCP + TLS connect deadline: 10 s. */
  connectTimeoutMs?: number;
}

export interface EgressRequest extends Omit<RequestInit, 'dispatcher' | 'redirect'> {
  /** Redirects followed, each target checked like the first URL (default 0: a 3xx is the answer). */
  maxRedirects?: number;
}

const redirects = new Set([301, 302, 303, 307, 308]);

/** The address's range when it may not be contacted (ipaddr.js names: 'loopback', 'private', …), else undefined. */
export function forbiddenRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'invalid';
  // process() turns ::ffff:a.b.c.d into a.b.c.d, so a mapped loopback is judged as loopback.
  const range = ipaddr.process(address).range();
  return range === 'unicast' ? undefined : range;
}

const refusal = (message: string) => new AppError('EGRESS_FORBIDDEN', message);

/** The policy applied to one destination; built once per Egress. */
class Rules {
  readonly #hosts = new Set<string>();
  readonly #hostPorts = new Set<string>();

  constructor(allow: readonly string[]) {
    for (const raw of allow) {
      const entry = raw.trim().toLowerCase();
      if (!entry) continue;
      const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(entry);
      if (m) this.#hostPorts.add(`${stripBrackets(m[1]!)}:${Number(m[2])}`);
      else this.#hosts.add(stripBrackets(entry));
    }
  }

  allowed(hostname: string, port: number): boolean {
    const host = stripBrackets(hostname.toLowerCase());
    return this.#hosts.has(host) || this.#hostPorts.has(`${host}:${port}`);
  }
}

const stripBrackets = (h: string) => (h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h);
const portOf = (protocol: string, port: string) => (port ? Number(port) : protocol === 'https:' ? 443 : 80);

/**
 * One policy with its connection pool. `check()` judges a URL without a network call (scheme and
 * literal addresses); `fetch()` checks, then connects through a connector that judges every
 * resolved address before the socket opens. `dispatcher` is the guarded undici dispatcher for
 * callers that use undici directly.
 */
export class Egress {
  readonly dispatcher: Dispatcher;
  readonly #rules: Rules;

  constructor(policy: EgressPolicy = {}) {
    this.#rules = new Rules(policy.allowHosts ?? []);
    const rules = this.#rules;
    const resolve = policy.lookup ?? (dnsLookup as unknown as Lookup);
    const connectTimeout = policy.connectTimeoutMs ?? 10_000;
    const connectors = new Map<boolean, buildConnector.connector>();
    const connectorFor = (allowed: boolean) => {
      let c = connectors.get(allowed);
      if (!c) {
        // An allowed host resolves however it likes; any other is judged on every address DNS gives.
        const lookup: Lookup = allowed ? resolve : (hostname, options, callback) => {
          resolve(hostname, options, (err, address, family) => {
            if (err) return callback(err, address, family);
            const all = Array.isArray(address) ? address : [{ address, family: family ?? isIP(address) }];
            const bad = all.find((a) => forbiddenRange(a.address) !== undefined);
            if (bad) return callback(refusal(`${hostname} resolves to a ${forbiddenRange(bad.address)} address; outgoing requests go to public addresses only`) as NodeJS.ErrnoException, address, family);
            callback(null, address, family);
          });
        };
        c = buildConnector({ timeout: connectTimeout, lookup: lookup as never });
        connectors.set(allowed, c);
      }
      return c;
    };
    this.dispatcher = new Agent({
      connect: (opts, callback) => {
        const allowed = rules.allowed(opts.hostname, portOf(opts.protocol, opts.port));
        // A literal address never reaches lookup (net.connect skips it): judged here.
        if (!allowed && isIP(opts.hostname)) {
          const range = forbiddenRange(opts.hostname);
          if (range) return callback(refusal(`${opts.hostname} is a ${range} address; outgoing requests go to public addresses only`), null);
        }
        if (!allowed && opts.protocol !== 'https:') return callback(refusal('outgoing requests use https only'), null);
        return connectorFor(allowed)(opts, callback);
      },
    });
  }

  /** The URL parsed, or EGRESS_FORBIDDEN when its scheme or literal address is refused (no DNS). */
  check(raw: string | URL): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw refusal('not a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refusal(`${url.protocol} URLs are not fetched; use https`);
    if (url.username || url.password) throw refusal('URLs with credentials are not fetched');
    const host = stripBrackets(url.hostname);
    if (this.#rules.allowed(host, portOf(url.protocol, url.port))) return url;
    if (url.protocol !== 'https:') throw refusal('outgoing requests use https only (EGRESS_ALLOW_HOSTS admits http for named hosts)');
    if (isIP(host)) {
      const range = forbiddenRange(host);
      if (range) throw refusal(`${host} is a ${range} address; outgoing requests go to public addresses only`);
    }
    return url;
  }

  /**
   * fetch() through the guard. A refusal (here, or at connect time for a name that resolves to a
   * forbidden address) rejects with EGRESS_FORBIDDEN; other failures are undici's, unchanged.
   */
  async fetch(raw: string | URL, init: EgressRequest = {}): Promise<Response> {
    const { maxRedirects = 0, ...rest } = init;
    let url = this.check(raw);
    for (let hops = 0; ; hops++) {
      let res: Response;
      try {
        res = await fetch(url, { ...rest, redirect: 'manual', dispatcher: this.dispatcher });
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause;
        if (cause instanceof AppError) throw cause;
        throw err;
      }
      const location = res.headers.get('location');
      if (!redirects.has(res.status) || !location || hops >= maxRedirects) return res;
      await res.body?.cancel().catch(() => undefined);
      url = this.check(new URL(location, url));
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
