// Builds the shell with the resource plugins (connections, chats, audit, me, admin) on a fresh
// database, for the route tests. `SupervisorDouble` is a TEST DOUBLE OF THE SUPERVISOR: it keeps
// ConnectionService's contract (owner scoping, error codes, states) by reading and writing real rows
// with the store's queries, but logs nothing in at any platform. The lead's black-box tests run the
// same routes against the real supervisor and the emulator.
import { createHash, randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { adminPlugin } from '../../src/api/admin.plugin.ts';
import { auditPlugin } from '../../src/api/audit.plugin.ts';
import { chatsPlugin } from '../../src/api/chats.plugin.ts';
import { connectionsPlugin } from '../../src/api/connections.plugin.ts';
import { consentsPlugin } from '../../src/api/consents.plugin.ts';
import { mePlugin } from '../../src/api/me.plugin.ts';
import { messagesPlugin } from '../../src/api/messages.plugin.ts';
import type { RateLimitOptions } from '../../src/api/rate-limit.plugin.ts';
import { quotaDefaults, type Quotas } from '../../src/config.ts';
import { AppError } from '../../src/errors.ts';
import { recordAudit } from '../../src/store/audit.ts';
import {
  deleteConnection, getConnection, insertConnection, listConnections, toConnection, type Connection, type ConnectionRow, type ListFilter,
} from '../../src/store/connections.ts';
import type { ConnectionService, CreateConnection } from '../../src/connections/types.ts';
import { Platforms } from '../../src/platforms/registry.ts';
import { telegramAdapter } from '../../src/platforms/telegram/index.ts';
import type { ChatCheck } from '../../src/store/chats.ts';
import type { ActorDetail, ActorSummary } from '../../src/supervisor/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, shellServer } from './shell-server.ts';

const notFound = () => new AppError('NOT_FOUND', 'not found');
// The real Telegram adapter (its schema, phone and chat rules, error codes); nothing here reaches Telegram.
export const platforms = new Platforms([telegramAdapter({ account: { apiId: 1, apiHash: 'test' }, bot: { botApiUrl: 'http://127.0.0.1:9' } })]);
const mask = (phone: string) => `${phone.slice(0, 3)}${'*'.repeat(Math.max(0, phone.length - 7))}${phone.slice(-4)}`;

/** Test double of the supervisor (see the file header). Conventions the tests rely on are below. */
export class SupervisorDouble implements ConnectionService {
  readonly calls: { method: string; args: unknown[] }[] = [];
  /** Chat titles by reference, e.g. to return markup as a platform might. */
  readonly titles = new Map<string, string>();
  /** Runs inside checkChat after the check succeeded (simulates what happens meanwhile). */
  afterCheck?: (owner: string, id: string, chat: string) => Promise<void>;
  private readonly actorsById = new Map<string, ActorSummary>();

  /** The supervisor is given QUOTA_CONNECTIONS_PER_OWNER the same way (store: insertConnection). */
  constructor(private readonly sql: postgres.Sql, private readonly maxConnectionsPerOwner?: number) {}

  private async row(owner: string, id: string): Promise<ConnectionRow> {
    const r = await getConnection(this.sql, owner, id);
    if (!r) throw notFound();
    return r;
  }

  private async setState(id: string, patch: { status: string; login?: unknown; displayName?: string; error?: unknown }): Promise<Connection> {
    const [r] = await this.sql<ConnectionRow[]>`
      update connections set status = ${patch.status}, status_since = now(), updated_at = now(),
        login = ${patch.login ? this.sql.json(patch.login as never) : null},
        error = ${patch.error ? this.sql.json(patch.error as never) : null},
        display_name = coalesce(${patch.displayName ?? null}, display_name)
      where id = ${id} returning *`;
    const actor = this.actorsById.get(id);
    if (actor) Object.assign(actor, { state: patch.status, since: new Date().toISOString() });
    return toConnection(r!);
  }

  async create(owner: string, body: CreateConnection): Promise<Connection> {
    // The platform's own checks of a user request (the phone number) are the adapter's, as in the
    // real service; a bot token is not sent anywhere here (conventions below).
    const input = (body.kind === 'user' ? { ...body, ...(await platforms.get('telegram').prepare(body)).secrets } : body) as
      { kind: 'user' | 'bot'; method?: 'phone' | 'qr'; phone?: string; token?: string };
    this.calls.push({ method: 'create', args: [owner, input] });
    const id = randomUUID();
    // Convention: tokens of bot 0 are refused by "getMe", like Telegram's 401.
    if (input.kind === 'bot' && input.token!.startsWith('0:')) throw new AppError('TG_BOT_TOKEN_INVALID', 'the bot token was refused');
    const login = input.kind === 'bot' ? undefined
      : input.method === 'qr' ? { method: 'qr', qr: { url: `tg://login?token=${Buffer.from(id).toString('base64url')}`, expiresAt: new Date(Date.now() + 30_000).toISOString() } }
        : { method: 'phone', codeType: 'app' };
    const row = await this.sql.begin(async (tx) => {
      const r = await insertConnection(tx, {
        id, owner, platform: 'telegram', kind: input.kind, shard: 0, machineVersion: 1,
        ...(input.kind === 'user' && input.method === 'phone' && { phoneMasked: mask(input.phone!) }),
        ...(login && { login }),
      }, this.maxConnectionsPerOwner);
      await recordAudit(tx, { owner, actor: owner, action: 'connection.created', target: id, details: { kind: input.kind } });
      return r;
    });
    this.actorsById.set(id, {
      id, kind: input.kind, owner, state: 'connecting', since: new Date().toISOString(), restarts: 0,
      breaker: { state: 'closed', failures: 0 }, memory: { bytes: 30_000, budget: 50 * 1024 * 1024 }, shard: 0,
    });
    if (input.kind === 'bot') {
      try {
        await this.sql`update connections set platform_user_id = ${input.token!.split(':')[0]!} where id = ${id}`;
      } catch (err) {
        await deleteConnection(this.sql, owner, id);
        if ((err as { code?: string }).code === '23505') throw new AppError('INVALID_STATE', 'this bot is already connected');
        throw err;
      }
      return this.setState(id, { status: 'active', displayName: 'Test bot' });
    }
    return this.setState(row.id, { status: input.method === 'qr' ? 'awaiting-qr' : 'awaiting-code', login });
  }

  async get(owner: string, id: string): Promise<Connection> {
    return toConnection(await this.row(owner, id));
  }

  async list(owner: string, filter: ListFilter): Promise<{ items: Connection[]; nextCursor?: string }> {
    this.calls.push({ method: 'list', args: [owner, filter] });
    return { items: (await listConnections(this.sql, owner, filter)).map(toConnection) };
  }

  // Conventions: code 00000 is wrong, 22222 leads to the 2FA step; passwords starting with "wrong" are wrong.
  async submitCode(owner: string, id: string, code: string): Promise<Connection> {
    const r = await this.row(owner, id);
    if (r.status !== 'awaiting-code') throw new AppError('INVALID_STATE', `connection is ${r.status}, not awaiting a code`);
    if (code === '00000') throw new AppError('TG_CODE_INVALID', 'the code is wrong');
    if (code === '22222') return this.setState(id, { status: 'awaiting-2fa', login: { method: 'phone', passwordHint: 'pet' } });
    return this.setState(id, { status: 'active', displayName: 'Alice' });
  }

  async resendCode(owner: string, id: string): Promise<Connection> {
    this.calls.push({ method: 'resendCode', args: [owner, id] });
    const r = await this.row(owner, id);
    if (r.status !== 'awaiting-code') throw new AppError('INVALID_STATE', `connection is ${r.status}, not awaiting a code`);
    return this.setState(id, { status: 'awaiting-code', login: { method: 'phone', codeType: 'sms' } });
  }

  async requestPasswordRecovery(owner: string, id: string): Promise<{ emailPattern: string }> {
    const r = await this.row(owner, id);
    if (r.status !== 'awaiting-2fa') throw new AppError('INVALID_STATE', `connection is ${r.status}, not awaiting the password`);
    return { emailPattern: 'a***@example.org' };
  }

  async recoverPassword(owner: string, id: string, code: string): Promise<Connection> {
    const r = await this.row(owner, id);
    if (r.status !== 'awaiting-2fa') throw new AppError('INVALID_STATE', `connection is ${r.status}, not awaiting the password`);
    if (code === '000000') throw new AppError('TG_CODE_INVALID', 'the code is wrong');
    return this.setState(id, { status: 'active', displayName: 'Alice' });
  }

  async submitPassword(owner: string, id: string, password: string): Promise<Connection> {
    this.calls.push({ method: 'submitPassword', args: [owner, id, password] });
    const r = await this.row(owner, id);
    if (r.status !== 'awaiting-2fa') throw new AppError('INVALID_STATE', `connection is ${r.status}, not awaiting the password`);
    if (password.startsWith('wrong')) throw new AppError('TG_PASSWORD_INVALID', 'the password is wrong');
    return this.setState(id, { status: 'active', displayName: 'Alice' });
  }

  async qr(owner: string, id: string): Promise<{ url: string; expiresAt: string }> {
    const r = await this.row(owner, id);
    const qr = (r.login as { qr?: { url: string; expiresAt: string } } | null)?.qr;
    if (r.status !== 'awaiting-qr' || !qr) throw new AppError('INVALID_STATE', `connection is ${r.status}, not awaiting a QR scan`);
    return qr;
  }

  async reconnect(owner: string, id: string): Promise<Connection> {
    await this.row(owner, id);
    return this.setState(id, { status: 'connecting' });
  }

  async remove(owner: string, id: string): Promise<void> {
    if (!(await deleteConnection(this.sql, owner, id))) throw notFound();
    this.actorsById.delete(id);
  }

  async removeAll(owner: string): Promise<number> {
    this.calls.push({ method: 'removeAll', args: [owner] });
    const rows = await this.sql<{ id: string }[]>`delete from connections where owner = ${owner} returning id`;
    for (const r of rows) this.actorsById.delete(r.id);
    return rows.length;
  }

  async stopAll(owner: string, reason: { code: string; message: string }): Promise<number> {
    this.calls.push({ method: 'stopAll', args: [owner, reason] });
    const rows = await this.sql<{ id: string }[]>`select id from connections where owner = ${owner} and status <> 'stopped'`;
    for (const r of rows) await this.setState(r.id, { status: 'stopped', error: reason });
    return rows.length;
  }

  // Conventions: refs containing "missing" do not resolve, "outsider" is not a member, "admin" is
  // administered; numeric refs are their own platform id, others get a stable -100… id.
  async checkChat(owner: string, id: string, chat: string, opts: { requireAdmin?: boolean } = {}): Promise<ChatCheck> {
    this.calls.push({ method: 'checkChat', args: [owner, id, chat] });
    await this.row(owner, id);
    if (chat.includes('missing')) throw new AppError('TG_CHAT_NOT_FOUND', 'no such chat');
    if (chat.includes('outsider')) throw new AppError('TG_NOT_MEMBER', 'not a member of this chat');
    const platformChatId = /^-?\d+$/.test(chat) ? chat : `-100${BigInt(`0x${createHash('sha256').update(chat).digest('hex').slice(0, 12)}`) % 10_000_000_000n}`;
    const isAdmin = /admin/i.test(chat);
    const check: ChatCheck = {
      platformChatId, type: 'channel', title: this.titles.get(chat) ?? `Chat ${chat}`,
      ...(chat.startsWith('@') && { username: chat.slice(1) }),
      isAdmin, canSend: isAdmin, rights: isAdmin ? { postMessages: true, editMessages: true } : {},
    };
    if (opts.requireAdmin && !isAdmin) throw new AppError('TG_NOT_ADMIN', 'the connection is not an admin of this chat');
    await this.afterCheck?.(owner, id, chat);
    return check;
  }

  // The platform's normalisation, as the real service does it.
  async chatRef(owner: string, id: string, chat: string): Promise<string> {
    await this.row(owner, id);
    const normalised = platforms.get('telegram').chatRef!.normalise(chat);
    if (normalised === undefined) {
      throw new AppError('VALIDATION_ERROR', 'request validation failed', { details: [{ path: 'chat', message: platforms.get('telegram').chatRef!.description, type: 'string.chatRef' }] });
    }
    return normalised;
  }

  actors(): { items: ActorSummary[]; totals: Record<string, number> } {
    const items = [...this.actorsById.values()];
    const totals: Record<string, number> = {};
    for (const a of items) totals[a.state] = (totals[a.state] ?? 0) + 1;
    return { items, totals };
  }

  * actorPages(pageSize: number): Generator<ActorSummary[]> {
    const items = [...this.actorsById.values()];
    for (let i = 0; i < items.length; i += pageSize) yield items.slice(i, i + pageSize);
  }

  async actor(id: string): Promise<ActorDetail | undefined> {
    const a = this.actorsById.get(id);
    return a && { ...a, snapshot: { value: a.state, status: 'active', tags: [] }, context: { connectionId: id }, transitions: [] };
  }

  async restart(id: string): Promise<boolean> {
    const a = this.actorsById.get(id);
    if (!a) return false;
    a.restarts += 1;
    return true;
  }
}

export interface RoutesServer {
  server: Awaited<ReturnType<typeof shellServer>>['server'];
  sql: postgres.Sql;
  supervisor: SupervisorDouble;
  /** Authorization header for a caller (fresh sub by default); `admin` adds the admin scope. */
  as(sub?: string, opts?: { admin?: boolean }): { authorization: string };
  close(): Promise<void>;
}

/** A server with every resource plugin on its own database. Rate limits are generous unless given; quotas default as in production. */
export async function routesServer(
  opts: {
    rateLimit?: RateLimitOptions; db?: TestDatabase; quotas?: Partial<Quotas>; /** also /v1/messages (delivery: a no-op) */ messages?: boolean;
    /** CONSENT_REQUIRED */ consentRequired?: boolean;
  } = {},
): Promise<RoutesServer> {
  const db = opts.db ?? await createTestDatabase();
  const shell = await shellServer({ rateLimit: opts.rateLimit ?? { connect: 10_000, send: 10_000, status: 100_000 } });
  const quotas: Quotas = { ...quotaDefaults, ...opts.quotas };
  const supervisor = new SupervisorDouble(db.sql, quotas.connectionsPerOwner);
  const deps = { sql: db.sql, connections: supervisor, platforms, quotas };
  await shell.server.register([
    { plugin: connectionsPlugin, options: deps },
    { plugin: chatsPlugin, options: deps },
    { plugin: auditPlugin, options: deps },
    { plugin: mePlugin, options: deps },
    { plugin: adminPlugin, options: deps },
    { plugin: consentsPlugin, options: { sql: db.sql, connections: supervisor, consentRequired: opts.consentRequired ?? false } },
    ...(opts.messages ? [{ plugin: messagesPlugin, options: { ...deps, delivery: { notify: () => undefined } } }] : []),
  ]);
  await shell.server.initialize();
  return {
    server: shell.server,
    sql: db.sql,
    supervisor,
    as: (sub = `u-${randomUUID()}`, o = {}) => bearer(shell.token(sub, o.admin ? { scope: 'admin' } : {})),
    async close() {
      await shell.server.stop();
      if (!opts.db) await db.drop();
    },
  };
}

/** Parsed JSON body of an inject answer. */
export const body = (res: { payload: string }) => JSON.parse(res.payload) as Record<string, any>;
