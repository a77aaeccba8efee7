import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type winston from 'winston';
import { waitFor } from 'xstate';
import { topLevelState } from '../../machines/persistence.ts';
import { NotOwnerError } from '../cluster/forward.ts';
import { secretContext, type Keyring } from '../crypto/keyring.ts';
import { AppError, errorSpec, isAppError } from '../errors.ts';
import type { ChatCheck } from '../platforms/adapter.ts';
import type { Platforms } from '../platforms/registry.ts';
import { completeAuthorization, newGrant, reauthorize, recordGrant, sealVerifier } from '../oauth/flows.ts';
import { shardOf } from '../shard.ts';
import { recordAudit } from '../store/audit.ts';
import {
  connectionIds, deleteConnection, findByAccount, getConnection, getConnectionById, insertConnection, listConnections, putSecret,
  type Connection, type ConnectionRow, type ListFilter,
} from '../store/connections.ts';
import { transaction } from '../store/transaction.ts';
import type { Runtime, Supervisor } from '../supervisor/supervisor.ts';
import type { ActorDetail, ActorSummary } from '../supervisor/types.ts';
import type { ConnectionService, CreateConnection } from './types.ts';

// The connection application service: what a caller may do with their connections — create one
// (the platform checks the request and says what to store), take the login steps, add chats,
// reconnect, delete — in terms of the platform interface and the supervisor's registry. It knows
// no platform: the adapters (src/platforms) decide what a request means, the machines decide
// whether a step is possible now (`snapshot.can`), and error categories decide what an answer means.

export interface ConnectionServiceOptions {
  sql: postgres.Sql;
  keyring: Keyring;
  platforms: Platforms;
  supervisor: Supervisor;
  logger: winston.Logger;
  shards: number;
  /** Several daemons: tells the owner of a new connection's shard to start it (this node does not hold it). */
  announce?: (connectionId: string) => Promise<void>;
  /** Connections one owner may have (QUOTA_EXCEEDED beyond; checked in the inserting transaction). */
  maxConnectionsPerOwner?: number;
  /** PUBLIC_URL: OAuth redirect URIs are built on it (default http://127.0.0.1:8080). */
  publicUrl?: string;
}

const notFound = () => new AppError('NOT_FOUND', 'No such connection');
const invalidState = (status: string, wanted: string) => new AppError('INVALID_STATE', `The connection is ${status}, not ${wanted}`);
const codeOf = (err: unknown) => (isAppError(err) ? err.code : (err as Error)?.name ?? 'unknown');

// The platform answers a logout in ~100 ms; 10 s covers a rate-limit wait or two retries, then the
// session is dropped anyway (platforms expire unused sessions on their own).
const LOGOUT_WAIT_MS = 10_000;

export class Connections implements ConnectionService {
  readonly #o: ConnectionServiceOptions;
  readonly #log: winston.Logger;

  constructor(opts: ConnectionServiceOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'connections' });
  }

  async create(owner: string, input: CreateConnection): Promise<Connection> {
    const { sql, keyring, supervisor, platforms } = this.#o;
    if (supervisor.stopped) throw new AppError('DEPENDENCY_UNAVAILABLE', 'The service is shutting down');
    if (!supervisor.budget.canAdmit()) throw new AppError('MEMORY_BUDGET_EXCEEDED', 'The service is near its memory limit and accepts no new connections now');
    const adapter = platforms.get(input.platform);
    const plan = await adapter.prepare(input);
    const spec = platforms.kind(adapter.name, plan.kind);
    if (plan.accountId && await findByAccount(sql, owner, adapter.name, plan.kind, plan.accountId)) {
      throw new AppError('INVALID_STATE', `This ${plan.kind === 'bot' ? 'bot' : 'account'} is already connected`);
    }
    const id = randomUUID();
    // OAuth kinds: the authorize URL (state bound to this id, PKCE) is part of the row's login.
    const grant = spec.oauth ? newGrant(spec.oauth, adapter.name, this.#publicUrl) : undefined;
    const sealedVerifier = grant ? await sealVerifier(keyring, grant, id) : undefined;
    const login = grant ? { ...plan.login, method: 'oauth', authorizeUrl: grant.authorizeUrl } : plan.login;
    // Secrets are encrypted first (the keyring may be Vault, over the network) and written in the
    // row's transaction: a row without its token or phone would come back at boot as a connection
    // that can never work, and would block adding the same account again.
    const sealed = await Promise.all(Object.entries(plan.secrets).map(async ([name, plaintext]) =>
      [name, await keyring.encrypt(plaintext, secretContext(id, name))] as const));
    const row = await transaction(sql, async (tx) => {
      const r = await insertConnection(tx, {
        id, owner, platform: adapter.name, kind: plan.kind, shard: shardOf(id, this.#o.shards), machineVersion: spec.machineVersion,
        ...(login ? { login } : {}), ...(plan.phoneMasked ? { phoneMasked: plan.phoneMasked } : {}),
        ...(plan.profile ? { profile: plan.profile } : {}),
      }, this.#o.maxConnectionsPerOwner);
      for (const [name, ciphertext] of sealed) await putSecret(tx, id, name, ciphertext);
      if (grant) {
        const returnTo = typeof input.redirectUri === 'string' ? input.redirectUri : undefined;
        await recordGrant(tx, sealedVerifier, grant, { connectionId: id, platform: adapter.name, now: Date.now(), ...(returnTo ? { returnTo } : {}) });
      }
      await recordAudit(tx, { owner, actor: owner, action: 'connection.created', target: id, details: plan.audit });
      return r;
    });
    if (!supervisor.runsHere(row.shard)) {
      // Another node holds the shard: it starts the actor; the caller follows by events or polling.
      await this.#o.announce?.(row.id);
      return supervisor.viewOf(row);
    }
    const rt = supervisor.run(row);
    // Answer once the first step is known (awaiting a code or QR for logins, active for bots), or
    // the current state after the step timeout: the client polls or listens to events from there.
    await supervisor.settle(rt, true);
    return supervisor.view(rt);
  }

  /** GET /v1/oauth/{platform}/callback: where to send the browser (OAUTH_STATE_INVALID: nothing changed). */
  async authorizationCallback(platform: string, q: { code?: string; state?: string; error?: string }): Promise<string> {
    return completeAuthorization(this.#oauthOptions(), platform, q);
  }

  /** POST /v1/connections/{id}/reauthorize: a new authorize URL (from error or awaiting-authorization). */
  async reauthorize(owner: string, id: string): Promise<Connection> {
    await reauthorize(this.#oauthOptions(), owner, id);
    const rt = await this.#running(owner, id);
    await this.#audit(rt, 'connection.reauthorize', {});
    return this.#o.supervisor.view(rt);
  }

  get #publicUrl(): string { return this.#o.publicUrl ?? 'http://127.0.0.1:8080'; }

  #oauthOptions() {
    const { sql, keyring, platforms, supervisor } = this.#o;
    return { sql, keyring, platforms, supervisor, logger: this.#log, publicUrl: this.#publicUrl };
  }

  async get(owner: string, id: string): Promise<Connection> {
    const rt = this.#o.supervisor.live(owner, id);
    if (rt) return this.#o.supervisor.view(rt);
    const row = await getConnection(this.#o.sql, owner, id);
    if (!row) throw notFound();
    return this.#o.supervisor.viewOf(row);
  }

  async list(owner: string, filter: ListFilter): Promise<{ items: Connection[] }> {
    const rows = await listConnections(this.#o.sql, owner, filter);
    return { items: rows.map((r) => this.#o.supervisor.viewOf(r)) };
  }

  async submitCode(owner: string, id: string, code: string): Promise<Connection> {
    return this.#step(owner, id, { type: 'CODE', code }, 'awaiting-code', 'login.code');
  }

  async resendCode(owner: string, id: string): Promise<Connection> {
    const { supervisor } = this.#o;
    const rt = await this.#running(owner, id);
    if (!rt.actor.getSnapshot().can({ type: 'RESEND' })) throw invalidState(rt.status, 'awaiting-code');
    rt.actor.send({ type: 'RESEND' });
    await supervisor.settle(rt, false);
    const error = supervisor.context(rt).error;
    await this.#audit(rt, 'login.code.resend', { result: error?.code ?? rt.status });
    // Any refusal is the caller's answer (no next way, too early, Telegram unreachable); the code
    // sent before still works, so the connection stays awaiting-code.
    if (error && rt.status === 'awaiting-code') {
      const retryAt = error.retryAt ?? supervisor.context(rt).retryAt;
      const spec = errorSpec(error.code);
      throw new AppError(error.code, error.message, spec?.category === 'rate-limited-until' && retryAt ? { retryAfter: Math.max(1, Math.ceil((retryAt - Date.now()) / 1000)) } : {});
    }
    return supervisor.view(rt);
  }

  async requestPasswordRecovery(owner: string, id: string): Promise<{ emailPattern: string }> {
    const rt = await this.#running(owner, id);
    if (!rt.actor.getSnapshot().can({ type: 'RECOVER' }) || !rt.driver.passwordRecovery) throw invalidState(rt.status, 'awaiting-2fa');
    try {
      const out = await rt.driver.passwordRecovery();
      await this.#audit(rt, 'login.password.recovery', { result: 'sent' });
      return out;
    } catch (err) {
      await this.#audit(rt, 'login.password.recovery', { result: isAppError(err) ? err.code : 'failed' });
      throw err;
    }
  }

  async recoverPassword(owner: string, id: string, code: string, newPassword?: string): Promise<Connection> {
    const rt = await this.#running(owner, id);
    if (!rt.actor.getSnapshot().can({ type: 'RECOVER' })) throw invalidState(rt.status, 'awaiting-2fa');
    // Out of band like the password: never in an event, a snapshot or a log.
    rt.driver.holdSecret?.('recovery', JSON.stringify({ code, ...(newPassword ? { newPassword } : {}) }));
    return this.#step(owner, id, { type: 'RECOVER' }, 'awaiting-2fa', 'login.password.recovery.code');
  }

  async submitPassword(owner: string, id: string, password: string): Promise<Connection> {
    const rt = await this.#running(owner, id);
    if (!rt.actor.getSnapshot().can({ type: 'PASSWORD' })) throw invalidState(rt.status, 'awaiting-2fa');
    // Out of band: the password never enters an event, a snapshot or a log; the supervisor drops it
    // when the machine leaves the states that need it.
    rt.driver.holdSecret?.('password', password);
    return this.#step(owner, id, { type: 'PASSWORD' }, 'awaiting-2fa', 'login.password');
  }

  async qr(owner: string, id: string): Promise<{ url: string; expiresAt: string }> {
    const rt = await this.#running(owner, id);
    const qr = this.#o.supervisor.context(rt).qr;
    if (rt.status !== 'awaiting-qr' || !qr) throw invalidState(rt.status, 'awaiting-qr');
    return { url: qr.url, expiresAt: new Date(qr.expiresAt).toISOString() };
  }

  async reconnect(owner: string, id: string): Promise<Connection> {
    const { sql, supervisor } = this.#o;
    const row = await getConnection(sql, owner, id);
    if (!row) throw notFound();
    if (!supervisor.runsHere(row.shard)) throw new NotOwnerError(row.shard);
    const rt = supervisor.live(owner, id) ?? supervisor.run(row);
    supervisor.reconnect(rt, 'reconnect');
    await this.#audit(rt, 'connection.reconnect', {});
    return supervisor.view(rt);
  }

  async remove(owner: string, id: string): Promise<void> {
    const { sql, supervisor } = this.#o;
    const row = await getConnection(sql, owner, id);
    if (!row) throw notFound();
    const rt = supervisor.live(owner, id);
    if (rt) {
      rt.actor.send({ type: 'LOGOUT' });
      await waitFor(rt.actor, (s) => topLevelState(s) === 'stopped' && !s.hasTag('busy'), { timeout: LOGOUT_WAIT_MS }).catch(() => {
        this.#log.warn('logout unconfirmed', { connectionId: id });
      });
      await supervisor.remove(rt, false);
    } else {
      const driver = supervisor.detachedDriver(row);
      await withTimeout(driver.logOut(), LOGOUT_WAIT_MS).catch((err) => this.#log.warn('logout unconfirmed', { connectionId: id, code: codeOf(err) }));
      await driver.dispose();
    }
    await transaction(sql, async (tx) => {
      await deleteConnection(tx, owner, id);
      await recordAudit(tx, { owner, actor: owner, action: 'connection.deleted', target: id, details: { kind: row.kind } });
    });
  }

  async removeAll(owner: string): Promise<number> {
    const ids = await connectionIds(this.#o.sql, owner);
    for (const id of ids) await this.remove(owner, id).catch((err) => { if (!(isAppError(err) && err.code === 'NOT_FOUND')) throw err; });
    return ids.length;
  }

  async stopAll(owner: string, reason: { code: string; message: string }): Promise<number> {
    let stopped = 0;
    for (const id of await connectionIds(this.#o.sql, owner)) {
      const rt = this.#o.supervisor.live(owner, id);
      if (!rt || rt.status === 'stopped') continue;
      // STOP leaves every state at once (a slot call in flight is abandoned); the supervisor
      // persists the stopped status with its reason and closes the client.
      rt.actor.send({ type: 'STOP', error: { code: reason.code, message: reason.message } });
      await this.#audit(rt, 'connection.stopped', { reason: reason.code });
      stopped += 1;
    }
    return stopped;
  }

  async checkChat(owner: string, id: string, chat: string, opts: { requireAdmin?: boolean } = {}): Promise<ChatCheck> {
    const rt = await this.#running(owner, id);
    if (rt.status !== 'active') throw new AppError('CONNECTION_NOT_ACTIVE', `The connection is ${rt.status}, not active`);
    if (!rt.driver.checkChat) throw new AppError('VALIDATION_ERROR', `${rt.platform} connections have no chats to add`);
    try {
      return await rt.driver.checkChat(chat, opts);
    } catch (err) {
      throw this.#o.supervisor.platformError(rt, err);
    }
  }

  async chatRef(owner: string, id: string, chat: string): Promise<string> {
    const row = await getConnection(this.#o.sql, owner, id);
    if (!row) throw notFound();
    const ref = this.#o.platforms.get(row.platform).chatRef;
    const normalised = ref?.normalise(chat);
    if (normalised === undefined) {
      const message = ref?.description ?? `${row.platform} connections have no chats to add`;
      throw new AppError('VALIDATION_ERROR', 'request validation failed', { details: [{ path: 'chat', message, type: 'string.chatRef' }] });
    }
    return normalised;
  }

  actors(): { items: ActorSummary[]; totals: Record<string, number> } { return this.#o.supervisor.actors(); }
  actorPages(pageSize: number): Iterable<ActorSummary[]> { return this.#o.supervisor.actorPages(pageSize); }
  async actor(id: string): Promise<ActorDetail | undefined> {
    const here = this.#o.supervisor.actor(id);
    if (here) return here;
    // Not running here: on a node that does not hold its shard, the owner answers (forwarded).
    const row = await getConnectionById(this.#o.sql, id);
    if (row && row.status !== 'stopped' && !this.#o.supervisor.runsHere(row.shard)) throw new NotOwnerError(row.shard);
    return undefined;
  }
  async restart(id: string): Promise<boolean> {
    if (await this.#o.supervisor.restart(id)) return true;
    // Not running here: on a node that does not hold its shard, the owner restarts it (forwarded).
    const row = await getConnectionById(this.#o.sql, id);
    if (row && row.status !== 'stopped' && !this.#o.supervisor.runsHere(row.shard)) throw new NotOwnerError(row.shard);
    return false;
  }

  // ---- internals -----------------------------------------------------------------------------

  // A login step: the machine says whether it takes the event now (else 409), the caller waits for
  // the step to finish, and a rejection the person can fix (a wrong code) answers with its code.
  async #step(owner: string, id: string, event: { type: string; [k: string]: unknown }, awaiting: string, action: string): Promise<Connection> {
    const { supervisor } = this.#o;
    const rt = await this.#running(owner, id);
    if (!rt.actor.getSnapshot().can(event)) throw invalidState(rt.status, awaiting);
    rt.actor.send(event);
    await supervisor.settle(rt, false);
    const error = supervisor.context(rt).error;
    await this.#audit(rt, action, { result: error?.code ?? rt.status });
    if (rt.status === awaiting && error && errorSpec(error.code)?.category === 'rejected') {
      throw new AppError(error.code, error.message);
    }
    return supervisor.view(rt);
  }

  async #running(owner: string, id: string): Promise<Runtime> {
    const rt = this.#o.supervisor.live(owner, id);
    if (rt) return rt;
    const row: ConnectionRow | undefined = await getConnection(this.#o.sql, owner, id);
    if (!row) throw notFound();
    if (!this.#o.supervisor.runsHere(row.shard) && row.status !== 'stopped') throw new NotOwnerError(row.shard);
    throw invalidState(row.status, 'running');
  }

  async #audit(rt: Runtime, action: string, details: Record<string, unknown>): Promise<void> {
    await recordAudit(this.#o.sql, { owner: rt.owner, actor: rt.owner, action, target: rt.id, details });
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new AppError('PLATFORM_UNAVAILABLE', 'timed out')), ms).unref())]);
