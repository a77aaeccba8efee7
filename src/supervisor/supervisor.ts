import type postgres from 'postgres';
import type winston from 'winston';
import { createActor, waitFor, type AnyActorRef, type AnyStateMachine, type InspectionEvent, type Snapshot } from 'xstate';
import { toStoredSnapshot, topLevelState } from '../../machines/persistence.ts';
import type { Keyring } from '../crypto/keyring.ts';
import { AppError, endsConnection, isAppError } from '../errors.ts';
import { bus } from '../events/bus.ts';
import type { NewEvent } from '../store/events.ts';
import { storeIncoming } from '../store/incoming.ts';
import type { Fence } from '../store/leases.ts';
import { metrics } from '../observability/metrics.ts';
import { withSpan } from '../observability/tracing.ts';
import type { ConnectionKind, Driver, OutboundMessage, OutboundOperation, ReceivedMessage, SendCapabilities } from '../platforms/adapter.ts';
import type { Platforms } from '../platforms/registry.ts';
import { getConnection, getConnectionById, runnablePages, saveState, toConnection, type Connection, type ConnectionRow, type Status } from '../store/connections.ts';
import { breakerStateName, createBreaker, type ConnectionBreaker } from './breaker.ts';
import { MemoryBudget } from './memory-budget.ts';
import { secretVault } from './secrets.ts';
import type { ActorDetail, ActorSummary, ShardOwnership } from './types.ts';
import { errorOf, liveView, type MachineContext } from './view.ts';

// The supervision core: one root actor per connection, found through this registry (ARCHITECTURE.md:
// a spawned child cannot be restored from its own snapshot). It restores actors from their rows at
// boot, persists snapshots on change (debounced, off the actor's path), runs each connect through the
// connection's breaker, holds the memory budget, and hands sends to the owning actor's driver. What a
// connection IS (kinds, machines, drivers) comes from the platform adapters; what a caller may do with
// it (create, log in, chats) is the connection service's (src/connections/service.ts).

export interface SupervisorOptions {
  sql: postgres.Sql;
  keyring: Keyring;
  platforms: Platforms;
  logger: winston.Logger;
  shards: number;
  /** Several daemons: run only the shards this node leases, and fence every write with the lease. */
  cluster?: ShardOwnership;
  memoryBudgetBytes: number;
  processMemoryLimitBytes?: number;
  restart: { max: number; windowS: number };
  breakerHalfOpenS: number;
  backoff: { baseMs: number; capMs: number };
  // Snapshots change in bursts (a login is 4–6 transitions in ~100 ms): one write per burst.
  persistDebounceMs?: number;
  memoryCheckMs?: number;
  // How long a caller waits for a login step to finish before answering with the current state.
  stepTimeoutMs?: number;
  /** A connection became active (delivery releases its parked messages). */
  onActive?: (connectionId: string) => void;
  onReceived?: (owner: string, connectionId: string, message: ReceivedMessage) => void;
}

interface Transition { at: number; from: string; to: string; event: string }

/** One running connection. The connection service reads it; only the supervisor changes it. */
export interface Runtime {
  readonly id: string;
  readonly owner: string;
  readonly platform: string;
  readonly kind: string;
  readonly shard: number;
  readonly spec: ConnectionKind;
  row: ConnectionRow;
  driver: Driver;
  actor: AnyActorRef;
  breaker: ConnectionBreaker;
  /** an incoming message failed to store since the watcher last asked (DriverContext.incomingStored) */
  incomingFailed?: boolean;
  status: Status;
  statusSince: number;
  stateValue: string;
  activeSince?: number;
  restarts: number;
  transitions: Transition[];
  persistTimer?: NodeJS.Timeout;
  /** connection.status events of changes not yet written: stored with the next write of the row */
  unstored: NewEvent[];
  halfOpenTimer?: NodeJS.Timeout;
  persisting?: Promise<void>;
  stopping: boolean;
  /**
   * Several daemons: the lease this runtime runs under. Its writes name this epoch, never the one held
   * when they run: a write retried past a lapse of the lease (a database outage) would otherwise land
   * over the state of the runtime started under the new lease.
   */
  fence?: Fence;
  /** Included in the per-state counts. */
  counted?: boolean;
}

const stateString = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #log: winston.Logger;
  readonly #registry = new Map<string, Runtime>();
  readonly #bySession = new Map<string, Runtime>();
  // The machines with their slots provided, one per (platform, kind) for this supervisor: each slot
  // finds its connection's driver in this registry. Providing per connection clones the whole
  // machine config (~2 ms), which blocked the loop for seconds when 1,000 accounts started at once.
  readonly #machines = new Map<string, AnyStateMachine>();
  readonly #budget: MemoryBudget;
  readonly #counts = new Map<string, number>();
  /** incoming messages being stored, chained per connection (their order is the platform's) */
  readonly #incoming = new Map<string, Promise<void>>();
  #memoryTimer?: NodeJS.Timeout;
  #stopped = false;
  #shardWork: Promise<unknown> = Promise.resolve();

  constructor(opts: SupervisorOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'supervisor' });
    this.#budget = new MemoryBudget({
      budgetBytes: opts.memoryBudgetBytes,
      ...(opts.processMemoryLimitBytes ? { processLimitBytes: opts.processMemoryLimitBytes } : {}),
    });
    const slotsOf = (connectionId: string): Driver['slots'] => {
      const rt = this.#registry.get(connectionId);
      if (!rt) throw new AppError('CONNECTION_NOT_ACTIVE', 'The connection is not running in this process');
      return rt.driver.slots;
    };
    for (const { platform, kind } of opts.platforms.pairs()) {
      this.#machines.set(`${platform}/${kind}`, opts.platforms.kind(platform, kind).machine(slotsOf));
    }
  }

  get size(): number { return this.#registry.size; }
  get stopped(): boolean { return this.#stopped; }
  get budget(): MemoryBudget { return this.#budget; }

  /**
   * Restores every runnable connection of the owned shards from its row. With a cluster it starts
   * none: the shards come as their leases do (startShards).
   */
  async start(): Promise<number> {
    const shards = this.#o.cluster ? [] : Array.from({ length: this.#o.shards }, (_, i) => i);
    const started = await this.#startRows(shards);
    this.#memoryTimer = setInterval(() => {
      this.#checkMemory();
      this.#exportBreakers();
    }, this.#o.memoryCheckMs ?? 5000);
    this.#memoryTimer.unref();
    this.#log.info('supervisor started', { connections: started });
    return started;
  }

  // Batches of 25 with a turn of the event loop between them: an actor costs ~0.25 ms to create
  // and start, so a batch holds the loop ~7 ms; 10,000 in one synchronous loop stalled HTTP and
  // every socket for seconds, batches of 100 for ~30 ms each.
  async #startRows(shards: number[]): Promise<number> {
    if (shards.length === 0) return 0;
    let started = 0;
    pages: for await (const rows of runnablePages(this.#o.sql, shards)) {
      for (const row of rows) {
        if (this.#stopped) break pages; // shut down while booting
        if (this.#registry.has(row.id) || !this.#runs(row) || !this.runsHere(row.shard)) continue;
        this.run(row);
        if (++started % 25 === 0) await new Promise((r) => setImmediate(r));
      }
    }
    return started;
  }

  /** Whether connections of this shard run in this process (always, without a cluster). */
  runsHere(shard: number): boolean {
    return !this.#o.cluster || this.#o.cluster.holds(shard);
  }

  /** Leases gained: their connections start (paced as at boot), one call after the other. */
  startShards(shards: number[]): Promise<number> {
    const next = this.#shardWork.then(() => this.#startRows(shards)).then((n) => {
      if (n > 0) this.#log.info('shard connections started', { shards, connections: n });
      return n;
    }, (err: Error) => {
      // A database that just came back can fail the first page; the shards stay held here, so
      // without another try their connections would never run on any node. Again in 1 s while held.
      const held = shards.filter((s) => this.runsHere(s));
      this.#log.error('shard connections not started; trying again', { shards, error: err.message });
      if (held.length > 0 && !this.#stopped) setTimeout(() => void this.startShards(held.filter((s) => this.runsHere(s))), 1000).unref();
      return 0;
    });
    this.#shardWork = next;
    return next;
  }

  /** Leases lost or handed over: their actors persist (while the lease still allows) and stop. */
  async stopShards(shards: number[]): Promise<number> {
    const set = new Set(shards);
    const all = [...this.#registry.values()].filter((rt) => set.has(rt.shard));
    await Promise.all(all.map((rt) => this.remove(rt, true).catch(() => undefined)));
    if (all.length > 0) this.#log.info('shard connections stopped', { shards, connections: all.length });
    return all.length;
  }

  /** A peer created a connection in a shard this node holds: it runs here. */
  async startConnection(id: string): Promise<boolean> {
    if (this.#stopped || this.#registry.has(id)) return false;
    const row = await getConnectionById(this.#o.sql, id);
    if (!row || row.status === 'stopped' || !this.#runs(row) || !this.runsHere(row.shard) || this.#registry.has(id)) return false;
    this.run(row);
    return true;
  }

  /** Persists every actor and closes every client (graceful shutdown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#memoryTimer);
    const all = [...this.#registry.values()];
    await Promise.all(all.map((rt) => this.shutdown(rt)));
    // Messages already received are stored before the pool closes.
    await Promise.allSettled([...this.#incoming.values()]);
    this.#registry.clear();
    this.#bySession.clear();
  }

  // ---- what the connection service uses ------------------------------------------------------

  /** The running connection of this owner, or undefined (not running here, or not theirs). */
  live(owner: string, id: string): Runtime | undefined {
    const rt = this.#registry.get(id);
    return rt && rt.owner === owner ? rt : undefined;
  }

  /** Starts the actor of a row (restored from its snapshot when the machine version allows). */
  run(row: ConnectionRow): Runtime {
    const rt = this.#runtime(row);
    const snapshot = this.#restorable(row, rt.spec);
    rt.actor = createActor(this.#machineOf(row), {
      input: rt.spec.input(row, this.#o.backoff),
      ...(snapshot ? { snapshot: snapshot as Snapshot<unknown> } : {}),
      inspect: (ev) => this.#inspect(ev),
    });
    this.#registry.set(rt.id, rt);
    this.#bySession.set(rt.actor.sessionId, rt);
    rt.actor.subscribe({
      next: (s: Snapshot<unknown>) => this.#onSnapshot(rt, s),
      error: (err: unknown) => this.#log.error('actor failed', { connectionId: rt.id, code: codeOf(err) }),
    });
    rt.actor.on('update', (e: { update: unknown }) => this.#onUpdate(rt, e.update));
    rt.actor.start();
    if (snapshot) rt.actor.send({ type: 'RESUME' });
    this.#onSnapshot(rt, rt.actor.getSnapshot());
    return rt;
  }

  /** A driver for a connection that is not running (to log it out before deleting it). */
  detachedDriver(row: ConnectionRow): Driver {
    return this.#runtime(row).driver;
  }

  /**
   * Waits until no slot call is in flight (the machines' 'busy' tag) and, for a new connection, until
   * it is past `connecting` or waiting out a backoff; then the caller answers with the state.
   */
  async settle(rt: Runtime, pastConnecting: boolean): Promise<void> {
    await waitFor(rt.actor, (s) => {
      const snap = s as { hasTag(t: string): boolean; context: MachineContext };
      if (snap.hasTag('busy')) return false;
      return !pastConnecting || topLevelState(s) !== 'connecting' || snap.context.retryAt != null;
    }, { timeout: this.#o.stepTimeoutMs ?? 15_000 }).catch(() => undefined);
  }

  /** Leaves `error` with a fresh breaker (a person asked for it). */
  reconnect(rt: Runtime, reason: string): void {
    rt.breaker = this.#newBreaker(rt);
    clearTimeout(rt.halfOpenTimer);
    rt.actor.send({ type: 'RECONNECT' });
    this.#countRestart(rt, reason);
  }

  /** Stops the actor (persisting its last snapshot unless it is being deleted) and forgets it. */
  async remove(rt: Runtime, persist: boolean): Promise<void> {
    await this.shutdown(rt, persist);
    this.#forget(rt);
  }

  context(rt: Runtime): MachineContext {
    return (rt.actor.getSnapshot() as { context: MachineContext }).context;
  }

  view(rt: Runtime): Connection {
    const v = liveView(rt.row, rt.status, rt.statusSince, this.context(rt), Date.now());
    const quotas = rt.driver.quotas?.();
    return quotas && quotas.length > 0 ? { ...v, quotas } : v;
  }

  /** The live view of a row when its actor runs here, else the row as stored. */
  viewOf(row: ConnectionRow): Connection {
    const rt = this.#registry.get(row.id);
    return rt ? this.view(rt) : toConnection(row);
  }

  /**
   * What a driver threw, as an AppError: the adapter classifies what escaped unmapped; anything else
   * is a bug whose effect at the platform is unknown. A failure that concerns the connection moves it
   * (PLATFORM_ERROR); the platform's answer about one request leaves it active for the others.
   */
  platformError(rt: Runtime, err: unknown): AppError {
    let e = isAppError(err) ? err : this.#o.platforms.get(rt.platform).classify(err);
    if (!e) {
      // Only the class is logged: a library's message may hold a URL with a token.
      this.#log.warn('driver threw an unclassified error', { connectionId: rt.id, errorName: (err as Error | undefined)?.name });
      e = new AppError('INTERNAL', 'The platform call failed unexpectedly', { cause: err, category: 'outcome-unknown' });
    }
    if (endsConnection(e)) rt.actor.send({ type: 'PLATFORM_ERROR', error: e });
    return e;
  }

  // ---- MessageSender -------------------------------------------------------------------------

  /** The send capabilities of a running connection; undefined when it does not run here. */
  capabilities(connectionId: string): { kind: string; send: SendCapabilities } | undefined {
    const rt = this.#registry.get(connectionId);
    return rt && { kind: rt.kind, send: rt.spec.send };
  }

  send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    // Ids and the attempt number only: the text and chat stay out of traces.
    return withSpan('supervisor.send', { 'connection.id': msg.connectionId, 'messaging.message.id': msg.id, 'message.attempt': msg.attempts }, () => this.#send(msg));
  }

  async #send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    const rt = this.#activeRuntime(msg);
    try {
      return await rt.driver.send(msg);
    } catch (err) {
      throw this.platformError(rt, err);
    }
  }

  operate(op: OutboundOperation): Promise<void> {
    return withSpan(`supervisor.${op.type}`, { 'connection.id': op.connectionId, 'messaging.message.id': op.id, 'message.attempt': op.attempts }, async () => {
      const rt = this.#activeRuntime(op);
      if (!rt.driver.operate) throw new AppError('PLATFORM_UNSUPPORTED', `${rt.platform} ${rt.kind} connections cannot ${op.type} messages`);
      try {
        await rt.driver.operate(op);
      } catch (err) {
        throw this.platformError(rt, err);
      }
    });
  }

  #activeRuntime(msg: { connectionId: string; owner: string }): Runtime {
    const rt = this.#registry.get(msg.connectionId);
    if (!rt || rt.owner !== msg.owner) throw new AppError('CONNECTION_NOT_ACTIVE', 'The connection is not running');
    if (rt.status !== 'active') {
      const until = rt.breaker.openUntil();
      if (until) throw new AppError('CIRCUIT_OPEN', 'The connection breaker is open', { retryAfter: Math.max(1, Math.ceil((until - Date.now()) / 1000)) });
      throw new AppError('CONNECTION_NOT_ACTIVE', `The connection is ${rt.status}, not active`);
    }
    return rt;
  }

  // ---- Operators -----------------------------------------------------------------------------

  /** Connections per status, from the counters kept on every change: O(states), not O(actors). */
  totals(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, n] of this.#counts) {
      const status = key.slice(0, key.indexOf('|'));
      if (n > 0) out[status] = (out[status] ?? 0) + n;
    }
    return out;
  }

  actors(): { items: ActorSummary[]; totals: Record<string, number> } {
    const items = [...this.actorPages(Infinity)].flat();
    const totals: Record<string, number> = {};
    for (const a of items) totals[a.state] = (totals[a.state] ?? 0) + 1;
    return { items, totals };
  }

  /** Over the actors registered when called; a summary is built when its page is taken. */
  * actorPages(pageSize: number): Generator<ActorSummary[]> {
    const all = [...this.#registry.values()];
    for (let i = 0; i < all.length; i += pageSize) yield all.slice(i, i + pageSize).map((rt) => this.#summary(rt));
  }

  actor(id: string): ActorDetail | undefined {
    const rt = this.#registry.get(id);
    if (!rt) return undefined;
    const snap = rt.actor.getSnapshot() as Snapshot<unknown> & { value: unknown; context: Record<string, unknown>; tags: Set<string> };
    // A pending login code is kept for retries, not for operators.
    const { pendingCode: _code, ...context } = snap.context;
    return {
      ...this.#summary(rt),
      snapshot: { value: snap.value, status: snap.status, tags: [...(snap.tags ?? [])] },
      context,
      transitions: rt.transitions.map((t) => ({ ...t, at: new Date(t.at).toISOString() })),
    };
  }

  /** Stops the actor and starts it again from its stored row (snapshot only if its version fits). */
  async restart(id: string): Promise<boolean> {
    const rt = this.#registry.get(id);
    if (!rt) return false;
    await this.shutdown(rt);
    this.#forget(rt);
    const row = await getConnection(this.#o.sql, rt.owner, id);
    if (!row) return false;
    const next = this.run(row);
    next.restarts = rt.restarts;
    this.#countRestart(next, 'admin');
    return true;
  }

  /** Check the budget now (tests and the admin view use it; the timer runs it every few seconds). */
  checkMemory(): void { this.#checkMemory(); }

  // ---- internals -----------------------------------------------------------------------------

  #machineOf(row: ConnectionRow): AnyStateMachine {
    return this.#machines.get(`${row.platform}/${row.kind}`)!;
  }

  // A row of a platform or kind this process does not speak (written by a newer version) is left alone.
  #runs(row: ConnectionRow): boolean {
    if (this.#machines.has(`${row.platform}/${row.kind}`)) return true;
    this.#log.warn('connection of an unknown platform or kind left alone', { connectionId: row.id, platform: row.platform, kind: row.kind });
    return false;
  }

  // The stored snapshot if its machine version is the current one, migrated if the kind knows how,
  // else none (the machine starts from its input: connect with the saved credentials).
  #restorable(row: ConnectionRow, spec: ConnectionKind): unknown {
    if (!row.snapshot) return undefined;
    if (row.machine_version === spec.machineVersion) return row.snapshot;
    return spec.migrateSnapshot?.(row.snapshot as Record<string, unknown>, row.machine_version);
  }

  #runtime(row: ConnectionRow): Runtime {
    const spec = this.#o.platforms.kind(row.platform, row.kind);
    const rt = {
      id: row.id, owner: row.owner, platform: row.platform, kind: row.kind, shard: row.shard, spec, row,
      status: row.status, statusSince: row.status_since.getTime(), stateValue: row.status,
      restarts: 0, transitions: [], stopping: false, unstored: [], fence: this.#o.cluster?.fence(row.shard),
    } as unknown as Runtime;
    rt.breaker = this.#newBreaker(rt);
    rt.driver = spec.driver({
      connectionId: row.id,
      owner: row.owner,
      secrets: this.#o.cluster
        ? secretVault(this.#o.sql, this.#o.keyring, row.id, () => rt.fence, () => void this.#o.cluster!.refused(row.shard, rt.fence?.epoch))
        : secretVault(this.#o.sql, this.#o.keyring, row.id),
      logger: this.#log.child({ connectionId: row.id, platform: row.platform }),
      guard: <T>(fn: () => Promise<T>) => rt.breaker.run(fn),
      ...(this.#o.cluster ? { runsHere: () => this.runsHere(row.shard) } : {}),
      incomingStored: async () => {
        await this.#incoming.get(row.id);
        if (!rt.incomingFailed) return;
        rt.incomingFailed = false;
        throw new Error('an incoming message could not be stored');
      },
    });
    return rt;
  }

  // The one inspection observer: records root-actor transitions for the admin view (last 50).
  #inspect(ev: InspectionEvent): void {
    if (ev.type !== '@xstate.snapshot') return;
    const rt = this.#bySession.get(ev.actorRef.sessionId);
    if (!rt) return;
    const to = stateString((ev.snapshot as { value?: unknown }).value);
    if (to === rt.stateValue) return;
    rt.transitions.push({ at: Date.now(), from: rt.stateValue, to, event: ev.event.type });
    if (rt.transitions.length > 50) rt.transitions.shift();
    rt.stateValue = to;
  }

  #onSnapshot(rt: Runtime, s: Snapshot<unknown>): void {
    if (rt.stopping) return;
    const snap = s as Snapshot<unknown> & { value: unknown; context: MachineContext; hasTag(t: string): boolean };
    const status = topLevelState(snap) as Status;
    // A secret given out of band (the 2FA password) lives only while a state needs it.
    if (!snap.hasTag('secret')) {
      rt.driver.holdSecret?.('password', undefined);
      rt.driver.holdSecret?.('recovery', undefined);
    }
    if (!rt.counted) {
      this.#count(rt, status, 1);
      rt.counted = true;
    } else if (status !== rt.status) {
      this.#count(rt, rt.status, -1);
      this.#count(rt, status, 1);
    }
    if (status !== rt.status) {
      const now = Date.now();
      if (rt.status === 'active' && rt.activeSince !== undefined) {
        metrics.sessionDuration.observe({ kind: rt.kind }, (now - rt.activeSince) / 1000);
        rt.activeSince = undefined;
      }
      if (status === 'active') rt.activeSince = now;
      if (status === 'connecting' && (rt.status === 'active' || rt.status === 'error')) this.#countRestart(rt, rt.status === 'active' ? 'dropped' : 'retry');
      if (status === 'error' || status === 'stopped') void rt.driver.dispose();
      if (status === 'error') {
        // Every entry into `error` is worth an operator's look (the alerts count them; this says which and why).
        const error = snap.context.error;
        this.#log.warn('connection entered error', {
          connectionId: rt.id, kind: rt.kind, from: rt.status, code: error?.code ?? 'UNKNOWN', ...(error?.retryAt ? { retryAt: error.retryAt } : {}),
        });
      }
      rt.status = status;
      rt.statusSince = now;
      // Stored with the row that records the change (#write), one transaction: readers of the events
      // table (WebSocket, the events exchange, webhooks) see it once it is committed. The in-process
      // bus hears of it at once; delivery is told directly.
      const view = this.view(rt);
      rt.unstored.push({ customerId: rt.owner, type: 'connection.status', connectionId: rt.id, data: view });
      this.#persist(rt, 0);
      bus.publish({ type: 'connection.status', owner: rt.owner, at: new Date(now).toISOString(), data: view });
      if (status === 'active') this.#o.onActive?.(rt.id);
    } else {
      this.#persist(rt, this.#o.persistDebounceMs ?? 50);
    }
  }

  #onUpdate(rt: Runtime, update: unknown): void {
    const message = rt.driver.received(update);
    if (!message) return;
    // Stored with its message.received event in one transaction before anyone hears of it; a repeated
    // update (same chat and platform message id) is neither stored nor announced again.
    // One at a time per connection, so events keep the order the platform delivered the messages in.
    const store = () => storeIncoming(this.#o.sql, { owner: rt.owner, connectionId: rt.id, message }).then((r) => {
      if (!r.stored) return;
      bus.publish({ type: 'message.received', owner: rt.owner, at: r.event!.occurredAt, data: r.event!.data });
      this.#o.onReceived?.(rt.owner, rt.id, message);
    }, (err: unknown) => {
      rt.incomingFailed = true; // told to the watcher by incomingStored(): it fetches the update again
      this.#log.error('incoming message not stored', { connectionId: rt.id, error: (err as Error).message });
    });
    const next = (this.#incoming.get(rt.id) ?? Promise.resolve()).then(store);
    this.#incoming.set(rt.id, next);
    void next.then(() => { if (this.#incoming.get(rt.id) === next) this.#incoming.delete(rt.id); });
  }

  #persist(rt: Runtime, delayMs: number): void {
    if (rt.persistTimer && delayMs > 0) return;
    clearTimeout(rt.persistTimer);
    rt.persistTimer = setTimeout(() => {
      rt.persistTimer = undefined;
      void this.#write(rt);
    }, delayMs);
  }

  // Writes never block the actor; one write per connection at a time, the latest state wins.
  async #write(rt: Runtime): Promise<void> {
    while (rt.persisting) await rt.persisting;
    const ctx = this.context(rt);
    const view = this.view(rt);
    const fence = rt.fence;
    const events = rt.unstored.splice(0);
    const p = saveState(this.#o.sql, rt.id, {
      status: rt.status,
      statusChanged: rt.row.status !== rt.status,
      displayName: ctx.profile?.displayName ?? null,
      username: ctx.profile?.username ?? null,
      platformUserId: ctx.profile?.platformUserId ?? null,
      login: view.login ?? null,
      error: view.error ?? null,
      snapshot: toStoredSnapshot(rt.actor.getPersistedSnapshot()),
      machineVersion: rt.spec.machineVersion,
      active: rt.status === 'active',
    }, fence, events).then((written) => {
      if (written || !fence) rt.row.status = rt.status;
      // Refused: this node's lease on the shard moved on (a stall past its deadline); the cluster stops the shard.
      // Its events go too: the shard's new owner reports the connection from now on.
      else void this.#o.cluster!.refused(rt.shard, fence.epoch);
    }, (err) => {
      rt.unstored.unshift(...events); // written with the retry, in order
      this.#log.error('could not persist connection state', { connectionId: rt.id, error: (err as Error).message });
      if (!rt.stopping) this.#persist(rt, 1000);
    });
    rt.persisting = p;
    await p;
    rt.persisting = undefined;
  }

  async shutdown(rt: Runtime, persist = true): Promise<void> {
    clearTimeout(rt.persistTimer);
    clearTimeout(rt.halfOpenTimer);
    const first = !rt.stopping;
    // Stopping from here: the last write is not retried, and changes the actor makes while it runs
    // start no write of their own. Either could land after the next runtime of this connection (an
    // admin restart, the shard taken back) had written its state, and put the old one over it.
    rt.stopping = true;
    if (persist && first) await this.#write(rt);
    rt.actor.stop();
    await rt.driver.dispose();
  }

  #forget(rt: Runtime): void {
    this.#registry.delete(rt.id);
    this.#bySession.delete(rt.actor.sessionId);
    this.#budget.forget(rt.id);
    if (rt.counted) this.#count(rt, rt.status, -1);
    rt.counted = false;
  }

  #newBreaker(rt: Runtime): ConnectionBreaker {
    const breaker = createBreaker({
      maxFailures: this.#o.restart.max,
      windowMs: this.#o.restart.windowS * 1000,
      halfOpenAfterMs: this.#o.breakerHalfOpenS * 1000,
    });
    breaker.policy.onBreak(() => {
      if (rt.breaker !== breaker || rt.stopping) return;
      const retryAt = breaker.openUntil() ?? Date.now() + this.#o.breakerHalfOpenS * 1000;
      metrics.breakerOpened.inc();
      this.#log.warn('circuit breaker opened', { connectionId: rt.id, retryAt: new Date(retryAt).toISOString() });
      rt.actor.send({ type: 'BREAKER_OPEN', retryAt });
      clearTimeout(rt.halfOpenTimer);
      // The half-open probe: one reconnect once the breaker lets a call through again.
      rt.halfOpenTimer = setTimeout(() => {
        if (rt.breaker === breaker && rt.status === 'error' && this.context(rt).error?.code === 'CIRCUIT_OPEN') rt.actor.send({ type: 'RECONNECT' });
      }, Math.max(0, retryAt - Date.now()) + 10);
      rt.halfOpenTimer.unref();
    });
    return breaker;
  }

  #checkMemory(): void {
    const entries = [...this.#registry.values()].filter((rt) => rt.status !== 'error' && rt.status !== 'stopped').map((rt) => ({
      id: rt.id,
      // ~200 B per recorded transition on top of what the driver holds.
      bytes: () => rt.driver.bytes() + rt.transitions.length * 200,
      trim: () => rt.driver.trim(),
    }));
    for (const id of this.#budget.check(entries)) {
      const rt = this.#registry.get(id);
      if (!rt) continue;
      metrics.memoryBudgetStops.inc();
      this.#log.warn('memory budget exceeded; connection stopped', { connectionId: id, bytes: this.#budget.bytesOf(id), budget: this.#budget.budgetBytes });
      rt.actor.send({ type: 'MEMORY_EXCEEDED' });
    }
  }

  #countRestart(rt: Runtime, reason: string): void {
    rt.restarts++;
    metrics.actorRestarts.inc({ kind: rt.kind, reason });
  }

  // Per-state counts move by one on each status change: O(1), where a full recount on every
  // change would be O(N²) over a 10,000-account restart.
  #count(rt: Runtime, status: Status | undefined, delta: number): void {
    if (!status) return;
    const key = `${status}|${rt.kind}`;
    const n = (this.#counts.get(key) ?? 0) + delta;
    this.#counts.set(key, n);
    metrics.connectionsByState.set({ state: status, kind: rt.kind }, n);
    if (status === 'active') metrics.sessionsActive.set({ kind: rt.kind }, n);
  }

  // Breaker states change without a status change (half-open probes): sampled with the memory check.
  #exportBreakers(): void {
    const breakers: Record<string, number> = { closed: 0, open: 0, 'half-open': 0, isolated: 0 };
    for (const rt of this.#registry.values()) breakers[breakerStateName(rt.breaker.policy.state)]!++;
    for (const [state, n] of Object.entries(breakers)) metrics.breakerState.set({ state }, n);
  }

  #summary(rt: Runtime): ActorSummary {
    // Only the error of the live view: building the whole view was ~40% of a summary's cost.
    const err = errorOf(this.context(rt)) ?? undefined;
    const openUntil = rt.breaker.openUntil();
    return {
      id: rt.id, kind: rt.kind, owner: rt.owner, state: rt.status, since: new Date(rt.statusSince).toISOString(),
      restarts: rt.restarts,
      breaker: { state: breakerStateName(rt.breaker.policy.state), failures: rt.breaker.window.failures, ...(openUntil ? { openUntil: new Date(openUntil).toISOString() } : {}) },
      memory: { bytes: this.#budget.bytesOf(rt.id) || rt.driver.bytes(), budget: this.#budget.budgetBytes },
      ...(err ? { lastError: err } : {}),
      shard: rt.shard,
      ...(this.#o.cluster ? { node: this.#o.cluster.node } : {}),
    };
  }
}

const codeOf = (err: unknown) => (isAppError(err) ? err.code : (err as Error)?.name ?? 'unknown');
