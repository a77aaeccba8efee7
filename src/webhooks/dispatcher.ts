import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';
import { request } from 'undici';
import type { Logger } from 'winston';
import type { Keyring } from '../crypto/keyring.ts';
import { isAppError } from '../errors.ts';
import type { Egress } from '../net/egress.ts';
import { retryAfterMs as readRetryAfter } from '../net/retry-after.ts';
import { logger as rootLogger } from '../observability/logger.ts';
import { recordAudit } from '../store/audit.ts';
import { transaction } from '../store/transaction.ts';
import {
  claimDeliveries, disableEndpoint, markEndpointOutcome, recordAttempts, releaseDeliveries, webhookStats,
  type Attempt, type ClaimedRow, type DeliveryRow, type EndpointRow,
} from '../store/webhooks.ts';
import { enqueueWebhookEvent, onWebhookEnqueued } from './enqueue.ts';
import { webhookMetrics, type AttemptResult } from './metrics.ts';
import { signingSecrets } from './secrets.ts';
import { signatureHeader } from './signing.ts';

// The durable delivery loop. Deliveries are rows; a dispatcher claims due ones with a lease
// (FOR UPDATE SKIP LOCKED, so several dispatchers share the work without waiting on each other),
// sends each as one signed POST, and records the attempt only while it still holds the lease. A
// dispatcher that dies mid-request leaves its lease to run out, and the row is claimed again: the
// receiver may see the same webhook-id twice (at-least-once), never zero times.

/** Standard Webhooks' recommended schedule after the first attempt: then the delivery fails. */
export const retrySchedule: readonly number[] = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
/** An endpoint whose attempts all failed for this long is disabled (API.md). */
export const failingLimitMs = 5 * 24 * 3_600_000;
/** Retry-After is honoured up to a day; a larger value is taken as a day. */
const maxRetryAfterMs = 24 * 3_600_000;
/** How long a wake-up gathers more work before claiming. */
const wakeBatchMs = 5;
/** Bytes of a response body kept on the delivery row for the operator. */
const snippetBytes = 512;

export interface DispatcherOptions {
  sql: postgres.Sql;
  keyring: Keyring;
  /** The SSRF guard: https, public addresses checked at connect time, EGRESS_ALLOW_HOSTS. */
  egress: Egress;
  logger?: Logger;
  /** Scheduling clock (due times, leases, backoff, the 5-day limit). The webhook-timestamp header is always wall time. */
  now?: () => Date;
  /** Jitter source in [0, 1). */
  random?: () => number;
  /** Lease owner name (default host:pid:random). */
  id?: string;
  /** Success is a 2xx within this: 15 s (API.md). */
  timeoutMs?: number;
  /** A claim lasts this long: the timeout plus 30 s, so a live dispatcher never loses a row it is sending. */
  leaseMs?: number;
  /** Requests in flight per endpoint: 4, so a slow endpoint holds at most 4 slots. */
  perEndpoint?: number;
  /** Requests in flight per dispatcher. */
  concurrency?: number;
  /**
   * Rows claimed ahead per endpoint (queued here, sent perEndpoint at a time): 64, so one claim feeds an
   * endpoint for many requests instead of one claim per request. bench:webhooks at load ~7 on 2 cores:
   * p99 746 ms with 64, 2,594 ms with 32 (the queue ran dry between claims); 128 let the dead and slow
   * endpoints fill maxHeld and was slower.
   */
  prefetch?: number;
  /** Rows held (queued or in flight) per dispatcher: 1,000. */
  maxHeld?: number;
  /** Idle poll for rows other processes queued (this process's enqueues wake it at once). */
  pollMs?: number;
  /** Metrics gauges refresh. */
  statsMs?: number;
  /** Announces a disabled endpoint; default: a `webhook.disabled` event to the owner's other endpoints. */
  onDisabled?: (endpoint: EndpointRow, reason: string) => Promise<void>;
}

interface EndpointState { endpoint: EndpointRow; queue: ClaimedRow[]; inflight: number }

interface Outcome { ok: boolean; httpStatus?: number; error?: string; result: AttemptResult; retryAfterMs?: number; snippet?: string }

export class WebhookDispatcher {
  readonly id: string;
  readonly #o: Required<Omit<DispatcherOptions, 'onDisabled' | 'logger' | 'id'>> & { onDisabled: NonNullable<DispatcherOptions['onDisabled']> };
  readonly #log: Logger;
  readonly #inflight = new Set<Promise<void>>();
  /** Claimed rows by endpoint: queued ones and the count in flight. */
  readonly #endpoints = new Map<string, EndpointState>();
  /** Outcomes waiting for the next flush (one UPDATE for all). */
  #outcomes: { row: ClaimedRow; outcome: Outcome; at: Date; durationMs: number }[] = [];
  /** Claimed rows that will not be sent: given back at the next turn. */
  readonly #dropped: string[] = [];
  readonly #idleWaiters: (() => void)[] = [];
  #held = 0;
  #poked = false;
  #attempted = 0;
  #running = false;
  #loop?: Promise<void>;
  #wake?: () => void;
  #unsubscribe?: () => void;
  #statsTimer?: NodeJS.Timeout;
  /** Decrypted secrets by ciphertext: one keyring call per secret, not per attempt (Vault is a network call). */
  readonly #plain = new Map<string, string>();

  constructor(opts: DispatcherOptions) {
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#log = opts.logger ?? rootLogger;
    const timeoutMs = opts.timeoutMs ?? 15_000;
    this.#o = {
      sql: opts.sql, keyring: opts.keyring, egress: opts.egress,
      now: opts.now ?? (() => new Date()), random: opts.random ?? Math.random,
      timeoutMs, leaseMs: opts.leaseMs ?? timeoutMs + 30_000,
      perEndpoint: opts.perEndpoint ?? 4, concurrency: opts.concurrency ?? 64,
      prefetch: Math.max(opts.prefetch ?? 64, opts.perEndpoint ?? 4), maxHeld: opts.maxHeld ?? 1000,
      pollMs: opts.pollMs ?? 500, statsMs: opts.statsMs ?? 15_000,
      onDisabled: opts.onDisabled ?? (async (e, reason) => {
        await enqueueWebhookEvent(opts.sql, {
          id: randomUUID(), customerId: e.owner, type: 'webhook.disabled', occurredAt: this.#o.now(), data: { webhookId: e.id, reason },
        });
      }),
    };
  }

  /** Runs the loop until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unsubscribe = onWebhookEnqueued(() => this.#poke());
    this.#loop = this.#run();
    this.#statsTimer = setInterval(() => void this.refreshStats().catch(() => undefined), this.#o.statsMs);
    this.#statsTimer.unref();
  }

  /** Graceful: claims nothing more, gives back rows not sent yet, waits for the requests in flight (each ends within the timeout) and records them. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#unsubscribe?.();
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    this.#wake?.();
    await this.#loop;
    await this.#releaseQueued();
    await this.#idle();
    await this.#flush();
  }

  /** One claim and its attempts, awaited and recorded (tests, with an injected clock). Returns how many were attempted. */
  async tick(limit = this.#o.concurrency): Promise<number> {
    const before = this.#attempted;
    await this.#claim(limit);
    this.#pumpAll();
    await this.#idle();
    await this.#flush();
    await this.#releaseDropped();
    return this.#attempted - before;
  }

  /** tick() until nothing is due. */
  async drain(): Promise<number> {
    let total = 0;
    for (let n = await this.tick(); n > 0; n = await this.tick()) total += n;
    return total;
  }

  async refreshStats(): Promise<void> {
    const s = await webhookStats(this.#o.sql, this.#o.now());
    webhookMetrics.pending.set(s.pending);
    webhookMetrics.dueLag.set(s.dueLagS);
    webhookMetrics.endpointsFailing.set(s.failing);
    webhookMetrics.oldestPendingAge.reset();
    for (const o of s.oldest) webhookMetrics.oldestPendingAge.set({ endpoint: o.endpointId }, o.ageS);
  }

  // One loop turn: record the outcomes gathered since the last turn (one statement), give back rows that
  // will not be sent, then claim for the free room (one transaction). Requests are started by #pump, from
  // the claim and from each finished request, so an endpoint's next request never waits for the database.
  async #run(): Promise<void> {
    while (this.#running) {
      this.#poked = false;
      let claimed = 0;
      let room = 0;
      try {
        // Recording and claiming touch different rows (ours in flight, others' unleased): side by side.
        room = this.#o.maxHeld - this.#held;
        const [, n] = await Promise.all([this.#flush().then(() => this.#releaseDropped()), room > 0 ? this.#claim(room) : 0]);
        claimed = n;
        this.#pumpAll();
      } catch (err) {
        this.#log.warn('webhook claim or record failed', { error: (err as Error).message });
      }
      // Fewer rows than room: nothing more is due now; wait for an enqueue, a finished attempt or the poll.
      if (this.#running && (claimed < room || room <= 0) && this.#outcomes.length === 0) await this.#sleep(this.#o.pollMs);
    }
  }

  /** Work arrived or an attempt finished: the loop turns again (now, or after its current turn). */
  #poke(): void {
    this.#poked = true;
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#poked) {
        // Poked during the turn: turn again after 5 ms (so a burst shares one turn).
        setTimeout(resolve, wakeBatchMs);
        return;
      }
      let woken = false;
      const done = () => {
        clearTimeout(t);
        this.#wake = undefined;
        resolve();
      };
      let t = setTimeout(done, ms);
      // A wake waits 5 ms more, so that the attempts finishing and events arriving meanwhile share one
      // flush and one claim (a claim is a transaction of 4 round trips).
      this.#wake = () => {
        if (woken) return;
        woken = true;
        clearTimeout(t);
        t = setTimeout(done, this.#running ? wakeBatchMs : 0);
      };
    });
  }

  /** Claims into the per-endpoint queues; returns how many rows came. */
  async #claim(limit: number): Promise<number> {
    const now = this.#o.now();
    const rows = await claimDeliveries(this.#o.sql, {
      leaseOwner: this.id, now, leaseUntil: new Date(now.getTime() + this.#o.leaseMs), limit, perEndpoint: this.#o.prefetch,
    });
    for (const row of rows) {
      let ep = this.#endpoints.get(row.endpoint_id);
      if (!ep) {
        ep = { endpoint: row.endpoint, queue: [], inflight: 0 };
        this.#endpoints.set(row.endpoint_id, ep);
      }
      // The freshest view of the endpoint (secret rotation, failure clock as recorded so far).
      ep.endpoint = row.endpoint;
      ep.queue.push(row);
      this.#held += 1;
    }
    return rows.length;
  }

  #pumpAll(): void {
    for (const ep of this.#endpoints.values()) this.#pump(ep);
  }

  /** Starts queued requests of one endpoint up to its cap (perEndpoint) and the dispatcher's (concurrency). */
  #pump(ep: EndpointState): void {
    while (ep.queue.length > 0 && ep.inflight < this.#o.perEndpoint && this.#inflight.size < this.#o.concurrency) {
      const row = ep.queue.shift()!;
      // Sent only with the whole timeout left on its lease (plus 5 s), so no other dispatcher can claim it
      // while the request is out; a row that waited too long in the queue goes back unsent.
      if (!ep.endpoint.enabled || !this.#running && !this.#ticking() || (row.lease_until?.getTime() ?? 0) - this.#o.now().getTime() < this.#o.timeoutMs + 5_000) {
        this.#dropped.push(row.id);
        this.#held -= 1;
        continue;
      }
      ep.inflight += 1;
      const p: Promise<void> = this.#attempt(row, ep).finally(() => {
        ep.inflight -= 1;
        this.#held -= 1;
        this.#inflight.delete(p);
        this.#pump(ep);
        if (this.#inflight.size < this.#o.concurrency) this.#pumpAll();
        this.#poke();
        if (this.#inflight.size === 0) for (const r of this.#idleWaiters.splice(0)) r();
      });
      this.#inflight.add(p);
    }
    if (ep.queue.length === 0 && ep.inflight === 0) this.#endpoints.delete(ep.endpoint.id);
  }

  /** true while tick() runs (no loop): queued rows are still sent. */
  #ticking(): boolean {
    return this.#loop === undefined;
  }

  /** Resolves when nothing is queued or in flight. */
  #idle(): Promise<void> {
    if (this.#inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #releaseQueued(): Promise<void> {
    for (const ep of this.#endpoints.values()) {
      for (const row of ep.queue.splice(0)) {
        this.#dropped.push(row.id);
        this.#held -= 1;
      }
    }
    await this.#releaseDropped();
  }

  async #releaseDropped(): Promise<void> {
    if (this.#dropped.length === 0) return;
    const ids = this.#dropped.splice(0);
    try {
      await releaseDeliveries(this.#o.sql, ids, this.id);
    } catch (err) {
      // Their leases run out instead.
      this.#log.warn('webhook rows could not be given back', { count: ids.length, error: (err as Error).message });
    }
  }

  async #attempt(row: ClaimedRow, ep: EndpointState): Promise<void> {
    try {
      const endpoint = ep.endpoint;
      const startedAt = this.#o.now();
      const secrets = await this.#secrets(endpoint, startedAt);
      const t0 = performance.now();
      const outcome = await this.#send(endpoint.url, row, secrets);
      const durationMs = Math.round(performance.now() - t0);
      this.#attempted += 1;
      webhookMetrics.deliveries.inc({ result: outcome.result });
      webhookMetrics.attemptDuration.observe(durationMs / 1000);
      this.#outcomes.push({ row, outcome, at: startedAt, durationMs });
    } catch (err) {
      // Our own failure (keyring): the lease runs out and the row is tried again.
      this.#log.error('webhook attempt failed before sending', { deliveryId: row.id, webhookId: row.endpoint_id, error: (err as Error).message });
    }
  }

  /** Records every outcome gathered so far in one statement, then the endpoint consequences (failure clock, disabling). */
  async #flush(): Promise<void> {
    if (this.#outcomes.length === 0) return;
    const batch = this.#outcomes.splice(0);
    const items = batch.map(({ row, outcome: o, at, durationMs }) => {
      const attempt: Attempt = {
        at: at.toISOString(), durationMs, ...(o.httpStatus !== undefined ? { httpStatus: o.httpStatus } : {}), ...(o.error ? { error: o.error } : {}),
      };
      const number = row.attempt_count + 1;
      let status: 'succeeded' | 'pending' | 'failed';
      let next: Date | null = null;
      if (o.ok) status = 'succeeded';
      else if (o.result === 'gone' || number > retrySchedule.length) status = 'failed';
      else {
        status = 'pending';
        // ±10 % jitter spreads the retries of an endpoint that came back.
        let delay = retrySchedule[number - 1]! * (0.9 + 0.2 * this.#o.random());
        if (o.retryAfterMs !== undefined) delay = Math.max(delay, Math.min(o.retryAfterMs, maxRetryAfterMs));
        next = new Date(at.getTime() + delay);
      }
      return { id: row.id, attempt, status, nextAttemptAt: next, ...(o.snippet ? { responseSnippet: o.snippet } : {}) };
    });
    let recorded: Set<string>;
    try {
      recorded = await recordAttempts(this.#o.sql, this.id, items);
    } catch (err) {
      // Not recorded: the leases run out and the rows are sent again (same webhook-id).
      this.#log.error('webhook attempts could not be recorded', { count: batch.length, error: (err as Error).message });
      return;
    }
    const nowMs = Date.now();
    for (const { row, outcome: o, at } of batch) {
      // A lease that ran out meanwhile: another dispatcher owns the row now and records its own attempt.
      if (!recorded.has(row.id)) continue;
      if (o.ok) webhookMetrics.eventToDelivered.observe(Math.max(0, (nowMs - row.created_at.getTime()) / 1000));
      try {
        await this.#consequences(row, o, at);
      } catch (err) {
        this.#log.warn('webhook endpoint state not updated', { webhookId: row.endpoint_id, error: (err as Error).message });
      }
    }
  }

  async #consequences(row: ClaimedRow, o: Outcome, at: Date): Promise<void> {
    const ep = this.#endpoints.get(row.endpoint_id);
    const endpoint = ep?.endpoint ?? row.endpoint;
    // The endpoint row changes only when the failure clock starts or stops (as last seen here).
    let failingSince = endpoint.failing_since;
    if (o.ok !== (failingSince === null)) {
      failingSince = await markEndpointOutcome(this.#o.sql, endpoint.id, o.ok, at);
      endpoint.failing_since = failingSince;
      row.endpoint.failing_since = failingSince;
    }
    if (o.result === 'gone') await this.#disable(endpoint, 'the endpoint answered 410 Gone', 'gone');
    else if (failingSince && at.getTime() - failingSince.getTime() >= failingLimitMs) {
      await this.#disable(endpoint, 'every attempt failed for 5 days', 'failing');
    }
  }

  async #secrets(e: EndpointRow, now: Date): Promise<string[]> {
    const key = `${e.secret}|${e.previous_expires_at && e.previous_expires_at > now ? e.previous_secret : ''}`;
    const hit = this.#plain.get(key);
    if (hit) return JSON.parse(hit) as string[];
    const secrets = await signingSecrets(this.#o.keyring, e, now);
    // Bounded: 1,000 endpoints' secrets; the oldest entry goes first.
    if (this.#plain.size >= 1000) this.#plain.delete(this.#plain.keys().next().value!);
    this.#plain.set(key, JSON.stringify(secrets));
    return secrets;
  }

  async #send(url: string, row: DeliveryRow, secrets: string[]): Promise<Outcome> {
    // Wall time, whatever the scheduling clock: receivers refuse a timestamp more than 5 min off theirs.
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'integration-service-webhooks/1',
      'webhook-id': row.event_id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(secrets, row.event_id, timestamp, row.body),
    };
    try {
      // undici's request() on the guarded dispatcher: the same connect-time address checks as
      // egress.fetch() at a fraction of fetch()'s CPU (bench:webhooks), and it never follows a redirect.
      const target = this.#o.egress.check(url);
      const res = await request(target, {
        method: 'POST', headers, body: row.body, dispatcher: this.#o.egress.dispatcher, signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
      const snippet = await readSnippet(res.body);
      const httpStatus = res.statusCode;
      const header = (name: string) => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] ?? null : v ?? null;
      };
      if (httpStatus >= 200 && httpStatus < 300) return { ok: true, httpStatus, result: 'success', ...(snippet ? { snippet } : {}) };
      const retryAfterMs = httpStatus === 429 || httpStatus === 503 ? readRetryAfter(header('retry-after')) : undefined;
      return {
        ok: false, httpStatus, result: httpStatus === 410 ? 'gone' : 'http_error', ...(snippet ? { snippet } : {}),
        // A redirect is not followed (its target was not checked and the body would be re-sent blind).
        ...(httpStatus >= 300 && httpStatus < 400 ? { error: `redirect to ${header('location') ?? '?'} not followed` } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    } catch (caught) {
      // The connector's refusal arrives as itself or as the cause of undici's error.
      const err = isAppError((caught as { cause?: unknown }).cause) ? (caught as { cause: unknown }).cause : caught;
      if (isAppError(err) && err.code === 'EGRESS_FORBIDDEN') return { ok: false, result: 'egress_refused', error: `EGRESS_FORBIDDEN: ${err.message}` };
      const name = (err as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') return { ok: false, result: 'timeout', error: `no answer within ${this.#o.timeoutMs} ms` };
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return { ok: false, result: 'network_error', error: (err as { code?: string }).code ?? cause?.code ?? cause?.message ?? (err as Error).message };
    }
  }

  async #disable(endpoint: EndpointRow, reason: string, label: string): Promise<void> {
    const disabled = await transaction(this.#o.sql, async (tx) => {
      const r = await disableEndpoint(tx, endpoint.id, reason);
      if (r) await recordAudit(tx, { owner: r.owner, actor: 'system', action: 'webhook.disabled', target: r.id, details: { reason } });
      return r;
    });
    // Whatever is queued for it goes back unsent.
    endpoint.enabled = false;
    if (!disabled) return;
    webhookMetrics.endpointsDisabled.inc({ reason: label });
    this.#log.warn('webhook endpoint disabled', { webhookId: endpoint.id, reason });
    await this.#o.onDisabled(disabled, reason).catch((err) => this.#log.warn('webhook.disabled event failed', { webhookId: endpoint.id, error: (err as Error).message }));
  }
}

/** The first 512 bytes of a response body as text; the rest is thrown away unread. */
async function readSnippet(body: AsyncIterable<Buffer> & { destroy(): unknown; dump?(): Promise<unknown> }): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < snippetBytes) chunks.push(chunk);
    size += chunk.length;
    // Past 64 KiB the rest is not worth reading: the socket is closed instead of drained.
    if (size > 65_536) {
      body.destroy();
      break;
    }
  }
  const text = Buffer.concat(chunks).subarray(0, snippetBytes).toString('utf8');
  return text || undefined;
}
