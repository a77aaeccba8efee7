import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';
import type winston from 'winston';
import { metrics } from '../observability/metrics.ts';
import { pidAlive } from '../pid-alive.ts';
import {
  acquireLeases, forgetNode, leaseCount, leaseHeld, listenCluster, liveNodes, nodesOnHost, notifyCluster, registerNode, releaseLeases, remapShards,
  removeNode, renewLeases, setNodeUrl, touchNode,
  type Acquired, type Fence, type Lease,
} from '../store/leases.ts';

// Several daemons on one database (ARCHITECTURE.md "Several daemons, one owner per connection"): a
// node holds shard leases in Postgres and runs only its shards' connections and queues. Leases are
// taken by compare-and-set and expire by the database's clock; each renewal also sets a local
// deadline on the monotonic clock, well inside the TTL, after which the node fences itself (stops the
// shard's actors and consumers) whether or not it could reach the database — so a frozen or cut-off
// owner has stopped before anyone else may acquire. Writes carry the epoch (a Fence); a stale one is
// refused by the database.

export interface ShardListener {
  /** Start the shards' actors or consumers (may run in the background). */
  gained(shards: number[]): void;
  /** Stop them; the lease is released (or left to expire) only after this resolves. */
  lost(shards: number[]): Promise<void>;
}

export interface ClusterOptions {
  sql: postgres.Sql;
  nodeId: string;
  shards: number;
  ttlMs: number;
  deadlineMs: number;
  renewMs: number;
  /**
   * How long after a lease's expiry its shard's connections may start here when the lease was taken
   * from an owner that did not give it back (a frozen, cut-off or killed node). Its sockets are still
   * open until the platform drops them (ping_delay_disconnect); 0 = start at once.
   */
  takeoverGraceMs?: number;
  logger: winston.Logger;
  /** LISTEN/NOTIFY for prompt hand-overs and new connections (off for the embedded database: one connection). */
  listen?: boolean;
  /** Where peers reach this node. */
  url?: string;
  /** monotonic milliseconds (tests inject) */
  now?: () => number;
}

export interface ClusterState { node: string; held: number[]; target: number; liveNodes: number; waiting: number[] }

// startAt: when the shard's work may start (monotonic); later than the acquisition while a takeover waits out its grace.
interface Held extends Lease { deadline: number; startAt: number }

export class Cluster {
  readonly #o: ClusterOptions;
  readonly #log: winston.Logger;
  readonly #now: () => number;
  readonly #held = new Map<number, Held>();
  // The epoch of the last lease held per shard, kept after it is lost: a late write names it and is refused.
  readonly #epochs = new Map<number, number>();
  readonly #listeners: ShardListener[] = [];
  readonly #connectionListeners: ((id: string) => void)[] = [];
  // Shards whose lost() has not resolved yet: the lease can come back (here, after its expiry) while
  // a stop stuck on a dead database still runs, and gained() then would find the old actors still
  // registered and start none.
  readonly #stopping = new Map<number, Promise<unknown>>();
  #self: { id: string; host: string; pid: number; url?: string };
  #timer?: NodeJS.Timeout;
  #fenceTimer?: NodeJS.Timeout;
  #ticking?: Promise<void>;
  #again = false;
  #draining = false;
  #stopped = false;
  #live = 1;
  #unlisten?: () => Promise<void>;
  #lastRenewOk = 0;
  #graceTimer?: NodeJS.Timeout;

  constructor(o: ClusterOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'cluster', node: o.nodeId });
    this.#now = o.now ?? (() => performance.now());
    this.#self = { id: o.nodeId, host: hostname(), pid: process.pid, ...(o.url ? { url: o.url } : {}) };
  }

  get node(): string { return this.#o.nodeId; }

  /** Registers the node and takes its first share (a lone node: every shard) before resolving. */
  async start(): Promise<void> {
    const { sql } = this.#o;
    await this.#reapDeadNeighbours();
    await this.#ensureShards();
    await registerNode(sql, this.#self);
    if (this.#o.listen) {
      this.#unlisten = await listenCluster(sql, (payload) => this.#onNotify(payload));
      await this.#notify(`joined:${this.#o.nodeId}`);
    }
    await this.#tick();
    this.#timer = setInterval(() => this.kick(), this.#o.renewMs);
    this.#timer.unref();
    // The deadline is enforced on its own timer too, not only at the next renewal: a renewal stuck on
    // a dead database must not keep the actors running.
    this.#fenceTimer = setInterval(() => void this.#fenceExpired(), Math.max(20, Math.min(250, Math.floor(this.#o.deadlineMs / 4))));
    this.#fenceTimer.unref();
  }

  /** Adds a listener and tells it the shards held now. */
  subscribe(l: ShardListener): void {
    this.#listeners.push(l);
    const held = this.heldShards();
    if (held.length > 0) l.gained(held);
  }

  /** Called with the id of a connection created on another node in a shard this one holds. */
  onConnection(fn: (id: string) => void): void { this.#connectionListeners.push(fn); }

  /** Tells the owner of a new connection's shard to start it (the creating node does not hold it). */
  async announceConnection(id: string): Promise<void> {
    if (this.#o.listen) await this.#notify(`connection:${id}`);
  }

  /** Whether this node may run the shard now: held, past a takeover's grace, and its local deadline not passed. */
  holds(shard: number): boolean {
    const h = this.#held.get(shard);
    const now = this.#now();
    return h !== undefined && now >= h.startAt && now < h.deadline;
  }

  /** What a write for this shard carries; the epoch last held (or -1, never valid) when not held now. */
  fence(shard: number): Fence {
    return { node: this.#o.nodeId, epoch: this.#held.get(shard)?.epoch ?? this.#epochs.get(shard) ?? -1 };
  }

  heldShards(): number[] {
    return [...this.#held.keys()].filter((s) => this.holds(s)).sort((a, b) => a - b);
  }

  /**
   * A fenced write was refused: true when the lease is the reason. When the database no longer names
   * this node at that epoch, the shard is stopped here at once (its lease went to someone else while
   * this node was stalled). A write that named an older epoch than the one held now (the lease lapsed
   * during a database outage and this node took it again) was refused for its epoch alone: true, and
   * the shard keeps running under the new lease.
   */
  async refused(shard: number, epoch?: number): Promise<boolean> {
    metrics.fencedWritesRefused.inc();
    const h = this.#held.get(shard);
    if (!h) return true;
    if (epoch !== undefined && epoch !== h.epoch) return true;
    if (await leaseHeld(this.#o.sql, shard, { node: this.#o.nodeId, epoch: h.epoch }).catch(() => true)) return false;
    if (this.#held.get(shard) === h) {
      this.#log.warn('a write was refused: the lease is no longer this node\'s; stopping the shard', { shard, epoch: h.epoch });
      await this.#lose([shard], false);
    }
    return true;
  }

  state(): ClusterState {
    const now = this.#now();
    const waiting = [...this.#held.values()].filter((h) => now < h.startAt).map((h) => h.shard).sort((a, b) => a - b);
    return { node: this.#o.nodeId, held: this.heldShards(), target: this.#target(), liveNodes: this.#live, waiting };
  }

  /** Where peers reach this node (known once its HTTP server listens). */
  async setUrl(url: string): Promise<void> {
    this.#self = { ...this.#self, url };
    await setNodeUrl(this.#o.sql, this.#o.nodeId, url);
  }

  /** Whether the last renewal round succeeded within the deadline (readiness). */
  healthy(): boolean {
    return !this.#stopped && this.#now() - this.#lastRenewOk < this.#o.deadlineMs;
  }

  /** Runs a round soon (a peer released, joined or left). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = this.#tick().finally(() => {
      this.#ticking = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Shutting down: keep renewing what is held, take nothing more, give nothing away yet. */
  drain(): void { this.#draining = true; }

  /** Gives every lease back at once (after the actors and consumers have stopped) and leaves. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#draining = true;
    this.#stopped = true;
    clearInterval(this.#timer);
    clearInterval(this.#fenceTimer);
    clearTimeout(this.#graceTimer);
    await this.#ticking?.catch(() => undefined);
    const held = [...this.#held.values()];
    this.#held.clear();
    try {
      const n = await releaseLeases(this.#o.sql, this.#o.nodeId, held);
      await removeNode(this.#o.sql, this.#o.nodeId);
      if (this.#o.listen) await this.#notify(`left:${this.#o.nodeId}`);
      this.#log.info('leases released', { shards: n });
    } catch (err) {
      this.#log.warn('leases not released; they expire by themselves', { error: (err as Error).message });
    }
    await this.#unlisten?.().catch(() => undefined);
    metrics.shardsHeld.set(0);
  }

  // ---- internals -----------------------------------------------------------------------------

  #target(): number {
    return Math.ceil(this.#o.shards / Math.max(1, this.#live));
  }

  async #tick(): Promise<void> {
    const { sql, nodeId, ttlMs, deadlineMs } = this.#o;
    // Not awaited: a stop stuck on a dead database must not hold up the other shards' renewals.
    void this.#fenceExpired();
    try {
      await touchNode(sql, this.#self);
      const held = [...this.#held.values()];
      const sent = this.#now();
      const renewed = new Set(await renewLeases(sql, nodeId, held, ttlMs));
      // The deadline counts from before the request: the database extended the lease after that.
      for (const h of held) if (renewed.has(h.shard) && this.#held.get(h.shard) === h) h.deadline = sent + deadlineMs;
      this.#lastRenewOk = sent;
      const gone = held.filter((h) => !renewed.has(h.shard) && this.#held.get(h.shard) === h).map((h) => h.shard);
      if (gone.length > 0) {
        this.#log.warn('leases lost to another node', { shards: gone });
        await this.#lose(gone, false);
      }
      if (this.#draining) return;
      this.#live = Math.max(1, (await liveNodes(sql, ttlMs)).length);
      const target = this.#target();
      if (this.#held.size > target) {
        // One shard per round: its connections reconnect on the taker paced, not all at once.
        const shard = Math.max(...this.#held.keys());
        this.#log.info('handing a shard over', { shard, held: this.#held.size, target });
        await this.#lose([shard], true);
      } else if (this.#held.size < target) {
        const t0 = this.#now();
        const got = await acquireLeases(sql, nodeId, target - this.#held.size, ttlMs);
        if (got.length > 0) {
          const waits = await this.#graces(got);
          for (const l of got) {
            this.#held.set(l.shard, { shard: l.shard, epoch: l.epoch, deadline: t0 + deadlineMs, startAt: t0 + waits.get(l.shard)! });
            this.#epochs.set(l.shard, l.epoch);
          }
          const now = got.filter((l) => waits.get(l.shard) === 0);
          const later = got.filter((l) => waits.get(l.shard)! > 0).map((l) => ({ shard: l.shard, waitMs: Math.round(waits.get(l.shard)!) }));
          this.#log.info('shards acquired', { shards: got.map((l) => l.shard), held: this.#held.size, target, ...(later.length > 0 ? { waiting: later } : {}) });
          if (now.length > 0) this.#gained(now);
          if (later.length > 0) this.#armGrace();
        }
      }
      metrics.shardsHeld.set(this.#held.size);
    } catch (err) {
      this.#log.warn('lease round failed', { error: (err as Error).message });
    }
  }

  // A shard taken from an owner that did not give it back starts only once that owner's sockets are
  // surely closed: it pinged at the latest at its own deadline (renewal + deadlineMs, which is
  // expiry - (ttlMs - deadlineMs)), and the platform drops a socket disconnect_delay after its last
  // ping, so the grace counts from the expiry (takeoverGraceMs = disconnect_delay + deadline - TTL,
  // config.ts). An owner on this host whose process is gone closed its sockets as it died: no wait.
  async #graces(got: Acquired[]): Promise<Map<number, number>> {
    const grace = this.#o.takeoverGraceMs ?? 0;
    const waits = new Map(got.map((l) => [l.shard, l.expiredMs === undefined ? 0 : Math.max(0, grace - l.expiredMs)]));
    if (![...waits.values()].some((w) => w > 0)) return waits;
    const dead = new Set((await nodesOnHost(this.#o.sql, this.#self.host).catch(() => []))
      .filter((n) => n.id !== this.#o.nodeId && n.pid !== process.pid && !pidAlive(n.pid)).map((n) => n.id));
    for (const l of got) if (l.previousOwner !== undefined && dead.has(l.previousOwner)) waits.set(l.shard, 0);
    return waits;
  }

  // One timer for the earliest shard still waiting; each firing announces every shard whose grace is over.
  #armGrace(): void {
    clearTimeout(this.#graceTimer);
    const now = this.#now();
    const waiting = [...this.#held.values()].filter((h) => h.startAt > now);
    if (waiting.length === 0 || this.#stopped) return;
    const next = Math.min(...waiting.map((h) => h.startAt));
    this.#graceTimer = setTimeout(() => {
      const t = this.#now();
      const ready = waiting.filter((h) => this.#held.get(h.shard) === h && h.startAt <= t && t < h.deadline);
      if (ready.length > 0) {
        this.#log.info('takeover grace over; starting the shards', { shards: ready.map((h) => h.shard) });
        this.#gained(ready);
      }
      this.#armGrace();
    }, Math.max(0, next - now) + 1);
    this.#graceTimer.unref();
  }

  async #fenceExpired(): Promise<void> {
    const now = this.#now();
    const expired = [...this.#held.values()].filter((h) => now >= h.deadline).map((h) => h.shard);
    if (expired.length === 0) return;
    this.#log.warn('lease deadline passed without a renewal; fencing the shards', { shards: expired });
    metrics.selfFences.inc(expired.length);
    await this.#lose(expired, true);
  }

  // Forgets the shards first (holds() is false from here), stops their work, then releases the leases
  // still held at those epochs so others need not wait for the expiry.
  async #lose(shards: number[], release: boolean): Promise<void> {
    const leases: Lease[] = [];
    for (const s of shards) {
      const h = this.#held.get(s);
      if (!h) continue;
      this.#held.delete(s);
      leases.push({ shard: s, epoch: h.epoch });
    }
    if (leases.length === 0) return;
    const lost = leases.map((l) => l.shard);
    const done = Promise.allSettled(this.#listeners.map((l) => l.lost(lost)));
    for (const s of lost) this.#stopping.set(s, done);
    await done;
    for (const s of lost) if (this.#stopping.get(s) === done) this.#stopping.delete(s);
    metrics.shardsHeld.set(this.#held.size);
    if (!release) return;
    try {
      if (await releaseLeases(this.#o.sql, this.#o.nodeId, leases) > 0 && this.#o.listen) await this.#notify(`released:${this.#o.nodeId}`);
    } catch (err) {
      this.#log.warn('leases not released; they expire by themselves', { shards: lost, error: (err as Error).message });
    }
  }

  // Listeners hear of a shard only once its previous stop has finished, and only if the lease taken
  // is still held then (a renewal round keeps running meanwhile: this does not block it).
  #gained(got: Lease[]): void {
    const pending = got.map((l) => this.#stopping.get(l.shard)).filter((p) => p !== undefined);
    const tell = () => {
      const shards = got.filter((l) => this.#held.get(l.shard)?.epoch === l.epoch && this.holds(l.shard)).map((l) => l.shard);
      if (shards.length > 0) for (const l of this.#listeners) l.gained(shards);
    };
    if (pending.length === 0) return tell();
    this.#log.info('shards acquired while their previous stop still runs; starting them after it', { shards: got.map((l) => l.shard) });
    void Promise.allSettled(pending).then(tell);
  }

  #onNotify(payload: string): void {
    const i = payload.indexOf(':');
    const what = payload.slice(0, i);
    const arg = payload.slice(i + 1);
    if (what === 'connection') {
      for (const fn of this.#connectionListeners) fn(arg);
      return;
    }
    if (arg !== this.#o.nodeId) this.kick();
  }

  async #notify(payload: string): Promise<void> {
    await notifyCluster(this.#o.sql, payload).catch((err: Error) => this.#log.debug('notify failed', { error: err.message }));
  }

  // A daemon restarted on this host takes back at once what a dead one of this host held: its pid is
  // gone, so it cannot be running (waiting out the TTL would only delay the restart).
  async #reapDeadNeighbours(): Promise<void> {
    for (const n of await nodesOnHost(this.#o.sql, this.#self.host)) {
      // Its own id too: a daemon restarted with a fixed NODE_ID finds its previous process's row.
      if (n.pid === process.pid || pidAlive(n.pid)) continue;
      const freed = await forgetNode(this.#o.sql, n.id);
      this.#log.info('a dead node of this host forgotten', { deadNode: n.id, pid: n.pid, freedShards: freed });
    }
  }

  async #ensureShards(): Promise<void> {
    const { sql, shards, ttlMs } = this.#o;
    const have = await leaseCount(sql);
    if (have === shards) return;
    const others = (await liveNodes(sql, ttlMs)).filter((n) => n.id !== this.#o.nodeId);
    if (others.length > 0) {
      throw new Error(`SHARDS is ${shards} but the database has ${have} shards and ${others.length} other node(s) run on it; give every node the same SHARDS`);
    }
    this.#log.warn('SHARDS changed; remapping connections and messages', { from: have, to: shards });
    await remapShards(sql, shards);
  }
}
