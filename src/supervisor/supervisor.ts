import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type winston from 'winston';
import { createActor, waitFor, type AnyActorRef, type InspectionEvent, type Snapshot } from 'xstate';
import { MACHINE_VERSION as ACCOUNT_VERSION } from '../../machines/account.machine.ts';
import { MACHINE_VERSION as BOT_VERSION } from '../../machines/bot.machine.ts';
import { toStoredSnapshot, topLevelState } from '../../machines/persistence.ts';
import { secretContext, type Keyring } from '../crypto/keyring.ts';
import { randomIdFor } from '../delivery/random-id.ts';
import type { MessageSender, OutboundMessage } from '../delivery/types.ts';
import { AppError, isAppError } from '../errors.ts';
import { bus } from '../events/bus.ts';
import { metrics } from '../observability/metrics.ts';
import { withSpan } from '../observability/tracing.ts';
import { maskPhone } from '../observability/redact.ts';
import { endsConnection } from '../platforms/telegram/errors.ts';
import type { Platform } from '../platforms/telegram/index.ts';
import { shardOf } from '../shard.ts';
import { recordAudit } from '../store/audit.ts';
import { transaction } from '../store/transaction.ts';
import {
  connectionIds, deleteConnection, findBot, getConnection, insertConnection, listConnections, putSecret, runnablePages, saveState, toConnection,
  type Connection, type ConnectionRow, type ListFilter, type Status,
} from '../store/connections.ts';
import { breakerStateName, createBreaker, type ConnectionBreaker } from './breaker.ts';
import type { Driver, ReceivedMessage } from './driver.ts';
import { MemoryBudget } from './memory-budget.ts';
import { secretVault } from './secrets.ts';
import type { ActorDetail, ActorSummary, ChatCheck, ConnectionService, CreateConnection } from './types.ts';
import { errorOf, liveView, type MachineContext } from './view.ts';

// One root actor per connection, found through this registry (ARCHITECTURE.md: a spawned child
// cannot be restored from its own snapshot). The supervisor restores actors from their rows at
// boot, persists snapshots on change (debounced, off the actor's path), runs each connect through
// the connection's breaker, holds the memory budget, and answers the control plane.

export interface SupervisorOptions {
  sql: postgres.Sql;
  keyring: Keyring;
  platform: Platform;
  logger: winston.Logger;
  shards: number;
  ownedShards?: number[];
  memoryBudgetBytes: number;
  processMemoryLimitBytes?: number;
  restart: { max: number; windowS: number };
  breakerHalfOpenS: number;
  backoff: { baseMs: number; capMs: number };
  // Snapshots change in bursts (a login is 4–6 transitions in ~100 ms): one write per burst.
  persistDebounceMs?: number;
  memoryCheckMs?: number;
  // How long an HTTP call waits for a login step to finish before answering with the current state.
  stepTimeoutMs?: number;
  onReceived?: (owner: string, connectionId: string, message: ReceivedMessage) => void;
}

interface Transition { at: number; from: string; to: string; event: string }

interface Runtime {
  id: string;
  owner: string;
  kind: 'user' | 'bot';
  shard: number;
  row: ConnectionRow;
  driver: Driver;
  actor: AnyActorRef;
  breaker: ConnectionBreaker;
  status: Status;
  statusSince: number;
  stateValue: string;
  activeSince?: number;
  restarts: number;
  transitions: Transition[];
  persistTimer?: NodeJS.Timeout;
  halfOpenTimer?: NodeJS.Timeout;
  persisting?: Promise<void>;
  stopping: boolean;
  /** Included in the per-state counts. */
  counted?: boolean;
}

const versionOf = (kind: 'user' | 'bot') => (kind === 'user' ? ACCOUNT_VERSION : BOT_VERSION);
const stateString = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

export class Supervisor implements ConnectionService, MessageSender {
  readonly #o: SupervisorOptions;
  readonly #log: winston.Logger;
  readonly #registry = new Map<string, Runtime>();
  readonly #bySession = new Map<string, Runtime>();
  readonly #budget: MemoryBudget;
  readonly #counts = new Map<string, number>();
  #memoryTimer?: NodeJS.Timeout;
  #stopped = false;

  constructor(opts: SupervisorOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'supervisor' });
    this.#budget = new MemoryBudget({
      budgetBytes: opts.memoryBudgetBytes,
      ...(opts.processMemoryLimitBytes ? { processLimitBytes: opts.processMemoryLimitBytes } : {}),
    });
  }

  get size(): number { return this.#registry.size; }
  get stopped(): boolean { return this.#stopped; }

  /** Restores every runnable connection of the owned shards from its row. */
  async start(): Promise<number> {
    const shards = this.#o.ownedShards ?? Array.from({ length: this.#o.shards }, (_, i) => i);
    // Batches of 25 with a turn of the event loop between them: an actor costs ~0.25 ms to create
    // and start, so a batch holds the loop ~7 ms; 10,000 in one synchronous loop stalled HTTP and
    // every socket for seconds, batches of 100 for ~30 ms each.
    let started = 0;
    pages: for await (const rows of runnablePages(this.#o.sql, shards)) {
      for (const row of rows) {
        if (this.#stopped) break pages; // shut down while booting
        if (this.#registry.has(row.id)) continue;
        this.#run(row, row.snapshot && row.machine_version === versionOf(row.kind) ? row.snapshot : undefined);
        if (++started % 25 === 0) await new Promise((r) => setImmediate(r));
      }
    }
    this.#memoryTimer = setInterval(() => {
      this.#checkMemory();
      this.#exportBreakers();
    }, this.#o.memoryCheckMs ?? 5000);
    this.#memoryTimer.unref();
    this.#log.info('supervisor started', { connections: started });
    return started;
  }

  /** Persists every actor and closes every client (graceful shutdown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#memoryTimer);
    const all = [...this.#registry.values()];
    await Promise.all(all.map((rt) => this.#shutdown(rt)));
    for (const rt of all) rt.driver.release();
    this.#registry.clear();
    this.#bySession.clear();
  }

  // ---- ConnectionService -------------------------------------------------------------------

  async create(owner: string, input: CreateConnection): Promise<Connection> {
    if (this.#stopped) throw new AppError('DEPENDENCY_UNAVAILABLE', 'The service is shutting down');
    if (!this.#budget.canAdmit()) throw new AppError('MEMORY_BUDGET_EXCEEDED', 'The service is near its memory limit and accepts no new connections now');
    const id = randomUUID();
    const shard = shardOf(id, this.#o.shards);
    const { sql, keyring } = this.#o;
    // The secret is encrypted first (the keyring may be Vault, over the network) and written in the
    // row's transaction: a row without its token or phone would come back at boot as a connection
    // that can never work, and would block adding the same bot again.
    const seal = (name: 'bot_token' | 'phone', plaintext: string) => keyring.encrypt(plaintext, secretContext(id, name));
    let row: ConnectionRow;
    if (input.kind === 'bot') {
      const me = await this.#o.platform.verifyBotToken(input.token);
      if (await findBot(sql, owner, me.platformUserId)) throw new AppError('INVALID_STATE', 'This bot is already connected');
      const sealed = await seal('bot_token', input.token);
      row = await transaction(sql, async (tx) => {
        const r = await insertConnection(tx, { id, owner, kind: 'bot', shard, machineVersion: BOT_VERSION, profile: me });
        await putSecret(tx, id, 'bot_token', sealed);
        await recordAudit(tx, { owner, actor: owner, action: 'connection.created', target: id, details: { kind: 'bot', botId: me.platformUserId } });
        return r;
      });
    } else {
      const method = input.method;
      const phoneMasked = method === 'phone' ? maskPhone(input.phone) : undefined;
      const sealed = method === 'phone' ? await seal('phone', input.phone) : undefined;
      row = await transaction(sql, async (tx) => {
        const r = await insertConnection(tx, { id, owner, kind: 'user', shard, machineVersion: ACCOUNT_VERSION, login: { method }, ...(phoneMasked ? { phoneMasked } : {}) });
        if (sealed) await putSecret(tx, id, 'phone', sealed);
        await recordAudit(tx, { owner, actor: owner, action: 'connection.created', target: id, details: { kind: 'user', method, ...(phoneMasked ? { phone: phoneMasked } : {}) } });
        return r;
      });
    }
    const rt = this.#run(row, undefined);
    // Answer once the first step is known (awaiting-code/qr for logins, active for bots), or the
    // current state after stepTimeoutMs: the client polls or listens to events from there.
    await this.#settle(rt, true);
    return this.#view(rt);
  }

  async get(owner: string, id: string): Promise<Connection> {
    const rt = this.#registry.get(id);
    if (rt && rt.owner === owner) return this.#view(rt);
    const row = await getConnection(this.#o.sql, owner, id);
    if (!row) throw notFound();
    return toConnection(row);
  }

  async list(owner: string, filter: ListFilter): Promise<{ items: Connection[]; nextCursor?: string }> {
    const rows = await listConnections(this.#o.sql, owner, { ...filter, limit: filter.limit + 1 });
    const page = rows.slice(0, filter.limit);
    const items = page.map((r) => {
      const rt = this.#registry.get(r.id);
      return rt ? this.#view(rt) : toConnection(r);
    });
    const last = page[page.length - 1];
    return rows.length > filter.limit && last
      ? { items, nextCursor: Buffer.from(JSON.stringify({ c: last.created_at.toISOString(), i: last.id })).toString('base64url') }
      : { items };
  }

  async submitCode(owner: string, id: string, code: string): Promise<Connection> {
    const rt = await this.#owned(owner, id);
    const event = { type: 'CODE', code } as const;
    if (!rt.actor.getSnapshot().can(event)) throw invalidState(rt.status, 'awaiting-code');
    rt.actor.send(event);
    await this.#settle(rt, false);
    const ctx = this.#context(rt);
    await this.#audit(rt, 'login.code', { result: ctx.error?.code ?? rt.status });
    if (rt.status === 'awaiting-code' && (ctx.error?.code === 'TG_CODE_INVALID' || ctx.error?.code === 'TG_CODE_EXPIRED')) {
      throw new AppError(ctx.error.code, ctx.error.message);
    }
    return this.#view(rt);
  }

  async submitPassword(owner: string, id: string, password: string): Promise<Connection> {
    const rt = await this.#owned(owner, id);
    const event = { type: 'PASSWORD' } as const;
    if (!rt.actor.getSnapshot().can(event)) throw invalidState(rt.status, 'awaiting-2fa');
    rt.driver.setPassword(password);
    rt.actor.send(event);
    await this.#settle(rt, false);
    const ctx = this.#context(rt);
    await this.#audit(rt, 'login.password', { result: ctx.error?.code ?? rt.status });
    if (rt.status === 'awaiting-2fa' && ctx.error?.code === 'TG_PASSWORD_INVALID') throw new AppError('TG_PASSWORD_INVALID', ctx.error.message);
    return this.#view(rt);
  }

  async qr(owner: string, id: string): Promise<{ url: string; expiresAt: string }> {
    const rt = await this.#owned(owner, id);
    const qr = this.#context(rt).qr;
    if (rt.status !== 'awaiting-qr' || !qr) throw invalidState(rt.status, 'awaiting-qr');
    return { url: qr.url, expiresAt: new Date(qr.expiresAt).toISOString() };
  }

  async reconnect(owner: string, id: string): Promise<Connection> {
    const row = await getConnection(this.#o.sql, owner, id);
    if (!row) throw notFound();
    let rt = this.#registry.get(id);
    if (!rt) {
      rt = this.#run(row, row.snapshot && row.machine_version === versionOf(row.kind) ? row.snapshot : undefined);
    }
    rt.breaker = this.#newBreaker(rt);
    clearTimeout(rt.halfOpenTimer);
    rt.actor.send({ type: 'RECONNECT' });
    this.#countRestart(rt, 'reconnect');
    await this.#audit(rt, 'connection.reconnect', {});
    return this.#view(rt);
  }

  async remove(owner: string, id: string): Promise<void> {
    const row = await getConnection(this.#o.sql, owner, id);
    if (!row) throw notFound();
    let rt = this.#registry.get(id);
    if (rt) {
      rt.actor.send({ type: 'LOGOUT' });
      // Telegram answers logOut in ~100 ms; 10 s covers a flood wait or two retries, then the
      // session is dropped anyway (Telegram expires unused keys on its own).
      await waitFor(rt.actor, (s) => topLevelState(s) === 'stopped' && !s.hasTag('busy'), { timeout: 10_000 }).catch(() => {
        this.#log.warn('logout unconfirmed', { connectionId: id });
      });
    } else {
      rt = this.#runtime(row);
      await withTimeout(rt.driver.logOut(), 10_000).catch((err) => this.#log.warn('logout unconfirmed', { connectionId: id, code: codeOf(err) }));
    }
    await this.#shutdown(rt, false);
    this.#forget(rt);
    await transaction(this.#o.sql, async (tx) => {
      await deleteConnection(tx, owner, id);
      await recordAudit(tx, { owner, actor: owner, action: 'connection.deleted', target: id, details: { kind: row.kind } });
    });
  }

  async removeAll(owner: string): Promise<number> {
    const ids = await connectionIds(this.#o.sql, owner);
    for (const id of ids) await this.remove(owner, id).catch((err) => { if (!(isAppError(err) && err.code === 'NOT_FOUND')) throw err; });
    return ids.length;
  }

  async checkChat(owner: string, id: string, chat: string): Promise<ChatCheck> {
    const rt = await this.#owned(owner, id);
    if (rt.status !== 'active') throw new AppError('CONNECTION_NOT_ACTIVE', `The connection is ${rt.status}, not active`);
    try {
      return await rt.driver.checkChat(chat);
    } catch (err) {
      throw this.#platformError(rt, err);
    }
  }

  // ---- MessageSender -----------------------------------------------------------------------

  kindOf(connectionId: string): 'user' | 'bot' | undefined {
    return this.#registry.get(connectionId)?.kind;
  }

  send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    // Ids and the attempt number only: the text and chat stay out of traces.
    return withSpan('supervisor.send', { 'connection.id': msg.connectionId, 'messaging.message.id': msg.id, 'message.attempt': msg.attempts }, () => this.#send(msg));
  }

  async #send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    const rt = this.#registry.get(msg.connectionId);
    if (!rt || rt.owner !== msg.owner) throw new AppError('CONNECTION_NOT_ACTIVE', 'The connection is not running');
    if (rt.status !== 'active') {
      const until = rt.breaker.openUntil();
      if (until) throw new AppError('CIRCUIT_OPEN', 'The connection breaker is open', { retryAfter: Math.max(1, Math.ceil((until - Date.now()) / 1000)) });
      throw new AppError('CONNECTION_NOT_ACTIVE', `The connection is ${rt.status}, not active`);
    }
    try {
      return await rt.driver.send({ ...msg, randomId: randomIdFor(msg.id) });
    } catch (err) {
      throw this.#platformError(rt, err);
    }
  }

  // ---- Operators ---------------------------------------------------------------------------

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
  *actorPages(pageSize: number): Generator<ActorSummary[]> {
    const all = [...this.#registry.values()];
    for (let i = 0; i < all.length; i += pageSize) yield all.slice(i, i + pageSize).map((rt) => this.#summary(rt));
  }

  actor(id: string): ActorDetail | undefined {
    const rt = this.#registry.get(id);
    if (!rt) return undefined;
    const snap = rt.actor.getSnapshot() as Snapshot<unknown> & { value: unknown; context: Record<string, unknown>; tags: Set<string> };
    // The pending login code is kept for retries, not for operators.
    const { pendingCode: _code, ...context } = snap.context;
    return {
      ...this.#summary(rt),
      snapshot: { value: snap.value, status: snap.status, tags: [...(snap.tags ?? [])] },
      context,
      transitions: rt.transitions.map((t) => ({ ...t, at: new Date(t.at).toISOString() })),
    };
  }

  async restart(id: string): Promise<boolean> {
    const rt = this.#registry.get(id);
    if (!rt) return false;
    await this.#shutdown(rt);
    this.#forget(rt);
    const row = await getConnection(this.#o.sql, rt.owner, id);
    if (!row) return false;
    const next = this.#run(row, row.snapshot ?? undefined);
    next.restarts = rt.restarts;
    this.#countRestart(next, 'admin');
    return true;
  }

  // ---- internals ---------------------------------------------------------------------------

  #runtime(row: ConnectionRow): Runtime {
    const rt = {
      id: row.id, owner: row.owner, kind: row.kind, shard: row.shard, row,
      status: row.status, statusSince: row.status_since.getTime(), stateValue: row.status,
      restarts: 0, transitions: [], stopping: false,
    } as unknown as Runtime;
    rt.breaker = this.#newBreaker(rt);
    const ctx = {
      connectionId: row.id,
      owner: row.owner,
      secrets: secretVault(this.#o.sql, this.#o.keyring, row.id),
      guard: <T>(fn: () => Promise<T>) => rt.breaker.run(fn),
    };
    rt.driver = row.kind === 'user' ? this.#o.platform.accountDriver(ctx) : this.#o.platform.botDriver(ctx);
    return rt;
  }

  #run(row: ConnectionRow, snapshot: unknown): Runtime {
    const rt = this.#runtime(row);
    const input = row.kind === 'user'
      ? { connectionId: row.id, login: (row.login?.method as string | undefined) ?? 'session', backoff: this.#o.backoff }
      : { connectionId: row.id, backoff: this.#o.backoff };
    rt.actor = createActor(rt.driver.machine, {
      input,
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
    const snap = s as Snapshot<unknown> & { value: unknown; context: MachineContext; hasTag(t: string): boolean; matches(v: unknown): boolean };
    const status = topLevelState(snap) as Status;
    if (status !== 'awaiting-2fa' || !snap.hasTag('busy') && !snap.matches({ 'awaiting-2fa': 'wait' })) rt.driver.setPassword(undefined);
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
      rt.status = status;
      rt.statusSince = now;
      this.#persist(rt, 0);
      bus.publish({ type: 'connection.status', owner: rt.owner, at: new Date(now).toISOString(), data: this.#view(rt) });
    } else {
      this.#persist(rt, this.#o.persistDebounceMs ?? 50);
    }
  }

  #onUpdate(rt: Runtime, update: unknown): void {
    const message = rt.driver.received(update);
    if (!message) return;
    const data = { connectionId: rt.id, ...message };
    bus.publish({ type: 'message.received', owner: rt.owner, at: new Date().toISOString(), data });
    this.#o.onReceived?.(rt.owner, rt.id, message);
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
    const snap = rt.actor.getSnapshot() as Snapshot<unknown> & { context: MachineContext };
    const ctx = snap.context;
    const view = this.#view(rt);
    const p = saveState(this.#o.sql, rt.id, {
      status: rt.status,
      statusChanged: rt.row.status !== rt.status,
      displayName: ctx.profile?.displayName ?? null,
      username: ctx.profile?.username ?? null,
      platformUserId: ctx.profile?.platformUserId ?? null,
      login: view.login ?? null,
      error: view.error ?? null,
      snapshot: toStoredSnapshot(rt.actor.getPersistedSnapshot()),
      machineVersion: versionOf(rt.kind),
      active: rt.status === 'active',
    }).then(() => { rt.row.status = rt.status; }, (err) => {
      this.#log.error('could not persist connection state', { connectionId: rt.id, error: (err as Error).message });
      if (!rt.stopping) this.#persist(rt, 1000);
    });
    rt.persisting = p;
    await p;
    rt.persisting = undefined;
  }

  async #shutdown(rt: Runtime, persist = true): Promise<void> {
    clearTimeout(rt.persistTimer);
    clearTimeout(rt.halfOpenTimer);
    if (persist && !rt.stopping) await this.#write(rt);
    rt.stopping = true;
    rt.actor.stop();
    await rt.driver.dispose();
  }

  #forget(rt: Runtime): void {
    this.#registry.delete(rt.id);
    this.#bySession.delete(rt.actor.sessionId);
    this.#budget.forget(rt.id);
    rt.driver.release();
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
        if (rt.breaker === breaker && rt.status === 'error' && this.#context(rt).error?.code === 'CIRCUIT_OPEN') rt.actor.send({ type: 'RECONNECT' });
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

  /** Check the budget now (tests and the admin view use it; the timer runs it every few seconds). */
  checkMemory(): void { this.#checkMemory(); }

  #platformError(rt: Runtime, err: unknown): AppError {
    // Drivers throw AppErrors. Anything else is a bug or an unmapped library failure, which says
    // nothing about the link (the heartbeat and the socket watch notice a dead one by themselves):
    // INTERNAL, retried by delivery, the connection left alone. Only the class is logged: a
    // library's message may hold a URL with a bot token.
    if (!isAppError(err)) {
      this.#log.warn('driver threw a non-AppError', { connectionId: rt.id, errorName: (err as Error | undefined)?.name });
      // Whether the platform acted is unknown: a bot message is then failed, not resent (no random_id).
      return new AppError('INTERNAL', 'The Telegram call failed unexpectedly', { cause: err, outcomeUnknown: true });
    }
    // A revoked session or token, or a link that gave no answer, moves the connection (reconnect
    // with backoff, or error). Telegram's answer about one message (bad markup, a chat that refuses
    // it, a flood wait) does not: the connection stays active for its other messages.
    if (endsConnection(err)) rt.actor.send({ type: 'PLATFORM_ERROR', error: err });
    return err;
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

  async #owned(owner: string, id: string): Promise<Runtime> {
    const rt = this.#registry.get(id);
    if (rt && rt.owner === owner) return rt;
    const row = await getConnection(this.#o.sql, owner, id);
    if (!row) throw notFound();
    throw invalidState(row.status, 'running');
  }

  // Waits until no slot call is in flight (the machines' 'busy' tag) and, for a new connection,
  // until it is past `connecting` or waiting out a backoff; then the caller answers with the state.
  async #settle(rt: Runtime, pastConnecting: boolean): Promise<void> {
    await waitFor(rt.actor, (s) => {
      const snap = s as { hasTag(t: string): boolean; context: MachineContext };
      if (snap.hasTag('busy')) return false;
      return !pastConnecting || topLevelState(s) !== 'connecting' || snap.context.retryAt != null;
    }, { timeout: this.#o.stepTimeoutMs ?? 15_000 }).catch(() => undefined);
  }

  #context(rt: Runtime): MachineContext {
    return (rt.actor.getSnapshot() as { context: MachineContext }).context;
  }

  #view(rt: Runtime): Connection {
    return liveView(rt.row, rt.status, rt.statusSince, this.#context(rt), Date.now());
  }

  #summary(rt: Runtime): ActorSummary {
    // Only the error of the live view: building the whole view was ~40% of a summary's cost.
    const err = errorOf(this.#context(rt)) ?? undefined;
    const openUntil = rt.breaker.openUntil();
    return {
      id: rt.id, kind: rt.kind, owner: rt.owner, state: rt.status, since: new Date(rt.statusSince).toISOString(),
      restarts: rt.restarts,
      breaker: { state: breakerStateName(rt.breaker.policy.state), failures: rt.breaker.window.failures, ...(openUntil ? { openUntil: new Date(openUntil).toISOString() } : {}) },
      memory: { bytes: this.#budget.bytesOf(rt.id) || rt.driver.bytes(), budget: this.#budget.budgetBytes },
      ...(err ? { lastError: err } : {}),
      shard: rt.shard,
    };
  }

  async #audit(rt: Runtime, action: string, details: Record<string, unknown>): Promise<void> {
    await recordAudit(this.#o.sql, { owner: rt.owner, actor: rt.owner, action, target: rt.id, details });
  }
}

const notFound = () => new AppError('NOT_FOUND', 'No such connection');
const invalidState = (status: string, wanted: string) => new AppError('INVALID_STATE', `The connection is ${status}, not ${wanted}`);
const codeOf = (err: unknown) => (isAppError(err) ? err.code : (err as Error)?.name ?? 'unknown');
const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new AppError('TG_UNAVAILABLE', 'timed out')), ms).unref())]);
