import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { randomBytes } from 'node:crypto';
import { Api, TelegramClient, helpers, sessions, password as srp } from 'telegram';
import { Raw } from 'telegram/events/index.js';
import { UpdateConnectionState } from 'telegram/network/index.js';
import { AppError } from '../../errors.ts';
import { metrics } from '../../observability/metrics.ts';
import { SpanKind, withSpan } from '../../observability/tracing.ts';
import { mapTelegramError } from './errors.ts';
import { createTelegramClient, type TelegramEndpoint } from './client-options.ts';
import { toApiEntities, type TextEntity } from './formatting.ts';

// One GramJS client per user account, used step by step (no client.start() callbacks). GramJS
// traps (EMULATOR.md): connect() can hang forever, in-flight invokes are not rejected on
// disconnect, and a client whose connect() failed hangs later calls — so every call has our own
// timeout and a failed client is destroyed, never reused.

export interface Profile { platformUserId: string; displayName: string; username?: string }
export type SignInResult = { result: 'ok'; profile: Profile } | { result: 'password'; hint?: string };
export type ClientEvent = { type: 'state'; state: number } | { type: 'update'; update: Api.TypeUpdate | Api.TypeUpdates };
export type QrResult = { result: 'token'; url: string; expiresAt: number } | SignInResult;

export interface AccountClientOptions extends TelegramEndpoint {
  apiId: number;
  apiHash: string;
  // Telegram answers in well under a second; 15 s means the socket is dead.
  callTimeoutMs?: number;
  connectTimeoutMs?: number;
  // Entities kept per account. Each row costs ~0.3 KiB, so 2000 rows stay under 1 MiB of the 50 MB budget.
  entityCacheMax?: number;
}

// MemorySession keeps every entity it ever saw (duplicates included, EMULATOR.md): bound it.
class BoundedSession extends sessions.StringSession {
  readonly #max: number;
  #rows = new Map<string, unknown>();

  constructor(value: string | undefined, max: number) {
    super(value);
    this.#max = max;
  }

  override processEntities(tlo: unknown): void {
    const rows = (this as unknown as { _entitiesToRows(t: unknown): unknown[][] })._entitiesToRows(tlo);
    for (const row of rows) {
      const id = String(row[0]);
      this.#rows.delete(id);
      this.#rows.set(id, row);
      if (this.#rows.size > this.#max) this.#rows.delete(this.#rows.keys().next().value!);
    }
    (this as unknown as { _entities: Set<unknown> })._entities = new Set(this.#rows.values());
  }

  get entityCount(): number { return this.#rows.size; }
}

// Seconds the DC waits for the next ping before closing the socket. Heartbeats come every 60 s
// ±10% (≤ 66 s); 90 s leaves room for a loop stalled by a mass reconnect without the DC dropping
// healthy connections (Telegram's own clients use 75 s with a 60 s ping).
const KEEPALIVE_DISCONNECT_S = 90;

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AppError('TG_UNAVAILABLE', `Telegram did not answer ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

const profileOf = (user: Api.TypeUser): Profile => {
  const u = user as Api.User;
  const name = [u.firstName, u.lastName].filter(Boolean).join(' ');
  return { platformUserId: String(u.id), displayName: name || u.username || String(u.id), ...(u.username ? { username: u.username } : {}) };
};

type ResolvedOptions = Required<Pick<AccountClientOptions, 'callTimeoutMs' | 'connectTimeoutMs' | 'entityCacheMax'>> & AccountClientOptions;

export class AccountClient {
  readonly #client: TelegramClient;
  readonly #session: BoundedSession;
  readonly #opts: ResolvedOptions;
  #destroyed = false;
  #down = false;
  readonly #handlers: ((event: ClientEvent) => void)[] = [];
  #fail!: (err: AppError) => void;
  // Rejects once the socket is gone: GramJS leaves in-flight invokes hanging on a dead connection,
  // so every call races this instead of waiting out its whole timeout.
  readonly #closed: Promise<never>;

  private constructor(client: TelegramClient, session: BoundedSession, opts: ResolvedOptions) {
    this.#client = client;
    this.#session = session;
    this.#opts = opts;
    this.#closed = new Promise<never>((_, reject) => { this.#fail = reject; });
    this.#closed.catch(() => undefined);
    this.#trapReconnect();
    client.addEventHandler((update: unknown) => {
      if (update instanceof UpdateConnectionState && update.state !== UpdateConnectionState.connected) this.#dropped();
      else this.#emit({ type: 'update', update: update as Api.TypeUpdate });
    }, new Raw({}));
  }

  // GramJS answers a closed socket by sleeping 1 s and reconnecting with the same key, by itself,
  // for every client at once — a thundering herd that can also race our own reconnect into
  // AUTH_KEY_DUPLICATED. The machine owns reconnection (jittered backoff), so the main sender's
  // reconnect() only reports the drop. GramJS creates `_sender` inside connect(): trap the assignment.
  #trapReconnect(): void {
    let sender: Sender | undefined;
    Object.defineProperty(this.#client, '_sender', {
      configurable: true,
      get: () => sender,
      set: (value: Sender | undefined) => {
        sender = value;
        if (value) {
          value.reconnect = () => this.#dropped();
          handleWholeContainers(value);
        }
      },
    });
  }

  #dropped(): void {
    if (this.#down) return;
    this.#down = true;
    this.#fail(new AppError('TG_UNAVAILABLE', 'The connection to Telegram dropped'));
    this.#emit({ type: 'state', state: UpdateConnectionState.disconnected });
  }

  #emit(event: ClientEvent): void {
    for (const handler of this.#handlers) handler(event);
  }

  /** Connects with a saved session (no DH, no login) or a fresh key. Throws AppError; never leaves a half-open client. */
  static async open(sessionString: string | undefined, options: AccountClientOptions): Promise<AccountClient> {
    const opts = { callTimeoutMs: 15_000, connectTimeoutMs: 10_000, entityCacheMax: 2000, ...options };
    const session = new BoundedSession(sessionString, opts.entityCacheMax);
    const client = createTelegramClient(session, opts);
    const entityCache = (client as unknown as { _entityCache: { cacheMap: Map<string, unknown> } })._entityCache;
    const add = (entityCache as unknown as { add(e: unknown): void }).add.bind(entityCache);
    (entityCache as unknown as { add(e: unknown): void }).add = (entities: unknown) => {
      add(entities);
      const map = entityCache.cacheMap;
      while (map.size > opts.entityCacheMax) map.delete(map.keys().next().value!);
    };
    // GramJS's own loop pings every 9 s per client (client/updates.js, PING_INTERVAL): 10,000
    // accounts made ~1,100 encrypted round trips a second, about one core in the daemon and more in
    // the DC. The driver's heartbeat (keepalive() every ~60 s) does its job instead; set before
    // connect(), which starts the loop unless this flag is up.
    (client as unknown as { _loopStarted: boolean })._loopStarted = true;
    const account = new AccountClient(client, session, opts);
    try {
      await withTimeout(Promise.race([client.connect(), account.#closed]), opts.connectTimeoutMs, 'connect');
    } catch (err) {
      await account.destroy();
      throw mapTelegramError(err);
    }
    return account;
  }

  /** The session string (auth key + DC). A secret: the caller encrypts it before it touches storage. */
  saveSession(): string {
    return this.#session.save();
  }

  // A span per call inside a trace (a send, a login step): the method name only, never the request,
  // which holds phone numbers, codes, passwords and message text.
  invoke<R extends Api.AnyRequest>(request: R, method: string): Promise<R['__response']> {
    return withSpan(`telegram ${method}`, { 'rpc.system': 'telegram', 'rpc.method': method }, () => this.#invoke(request, method), { kind: SpanKind.CLIENT, root: false });
  }

  async #invoke<R extends Api.AnyRequest>(request: R, method: string): Promise<R['__response']> {
    if (this.#destroyed) throw new AppError('TG_UNAVAILABLE', 'The Telegram client was closed');
    const started = process.hrtime.bigint();
    let outcome = 'ok';
    try {
      return await withTimeout(Promise.race([this.#client.invoke(request), this.#closed]), this.#opts.callTimeoutMs, method);
    } catch (err) {
      const mapped = mapTelegramError(err);
      outcome = mapped.code;
      throw mapped;
    } finally {
      metrics.apiLatency.observe({ method, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /**
   * One heartbeat: ping_delay_disconnect (the DC closes the socket if no ping follows within
   * KEEPALIVE_DISCONNECT_S, so a client that vanished frees its connection there) and
   * updates.getState (Telegram wants a content request now and then to keep sending updates, and it
   * answers AUTH_KEY_UNREGISTERED once the session is revoked). Both go out in one container.
   * False when the session is revoked; throws TG_UNAVAILABLE when the link is dead or too slow.
   */
  async keepalive(): Promise<boolean> {
    if (this.#destroyed) throw new AppError('TG_UNAVAILABLE', 'The Telegram client was closed');
    const sender = (this.#client as unknown as { _sender: { send(r: Api.PingDelayDisconnect): Promise<unknown> } })._sender;
    const ping = withTimeout(Promise.race([
      sender.send(new Api.PingDelayDisconnect({ pingId: helpers.returnBigInt(randomBytes(8).readBigInt64LE(0)), disconnectDelay: KEEPALIVE_DISCONNECT_S })),
      this.#closed,
    ]), this.#opts.callTimeoutMs, 'ping');
    ping.catch(() => undefined);
    if (!(await this.isAuthorized())) return false;
    await ping;
    return true;
  }

  /** True when the key is logged in. An unregistered key is a plain "no" here; the caller knows if it was revoked. */
  async isAuthorized(): Promise<boolean> {
    try {
      await this.invoke(new Api.updates.GetState(), 'updates.getState');
      return true;
    } catch (err) {
      if (err instanceof AppError && err.code === 'TG_SESSION_EXPIRED') return false;
      throw err;
    }
  }

  /**
   * The profile when the key is logged in, undefined when it is not (the connect step): one round
   * trip where isAuthorized() + me() took two — at a restart of 10,000 accounts, 10,000 fewer.
   */
  async profileIfAuthorized(): Promise<Profile | undefined> {
    try {
      return await this.me();
    } catch (err) {
      if (err instanceof AppError && err.code === 'TG_SESSION_EXPIRED') return undefined;
      throw err;
    }
  }

  async me(): Promise<Profile> {
    const [user] = await this.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] }), 'users.getUsers');
    return profileOf(user!);
  }

  async sendCode(phone: string): Promise<{ phoneCodeHash: string; codeType: 'app' | 'sms' }> {
    const sent = await this.invoke(new Api.auth.SendCode({
      phoneNumber: phone, apiId: this.#opts.apiId, apiHash: this.#opts.apiHash, settings: new Api.CodeSettings({}),
    }), 'auth.sendCode');
    if (!(sent instanceof Api.auth.SentCode)) throw new AppError('TG_UNAVAILABLE', 'Telegram answered sendCode unexpectedly');
    return { phoneCodeHash: sent.phoneCodeHash, codeType: sent.type instanceof Api.auth.SentCodeTypeApp ? 'app' : 'sms' };
  }

  async signIn(phone: string, phoneCodeHash: string, code: string): Promise<SignInResult> {
    try {
      const auth = await this.invoke(new Api.auth.SignIn({ phoneNumber: phone, phoneCodeHash, phoneCode: code }), 'auth.signIn');
      if (auth instanceof Api.auth.AuthorizationSignUpRequired) throw new AppError('TG_PHONE_INVALID', 'This phone number has no Telegram account');
      return { result: 'ok', profile: profileOf(auth.user) };
    } catch (err) {
      if (err instanceof AppError && err.code === 'TG_2FA_REQUIRED') return { result: 'password', ...(await this.#hint()) };
      throw err;
    }
  }

  async #hint(): Promise<{ hint?: string }> {
    const pw = await this.invoke(new Api.account.GetPassword(), 'account.getPassword');
    return pw.hint ? { hint: pw.hint } : {};
  }

  async checkPassword(password: string): Promise<Profile> {
    const pw = await this.invoke(new Api.account.GetPassword(), 'account.getPassword');
    const check = await srp.computeCheck(pw, password);
    const auth = await this.invoke(new Api.auth.CheckPassword({ password: check }), 'auth.checkPassword');
    if (!(auth instanceof Api.auth.Authorization)) throw new AppError('TG_UNAVAILABLE', 'Telegram answered checkPassword unexpectedly');
    return profileOf(auth.user);
  }

  /** A QR login token, or the login's end once a device accepted it (success or 2FA). */
  async exportQr(): Promise<QrResult> {
    try {
      const res = await this.invoke(new Api.auth.ExportLoginToken({ apiId: this.#opts.apiId, apiHash: this.#opts.apiHash, exceptIds: [] }), 'auth.exportLoginToken');
      if (res instanceof Api.auth.LoginToken) {
        const token = Buffer.from(res.token).toString('base64url');
        return { result: 'token', url: `tg://login?token=${token}`, expiresAt: res.expires * 1000 };
      }
      if (res instanceof Api.auth.LoginTokenSuccess && res.authorization instanceof Api.auth.Authorization) {
        return { result: 'ok', profile: profileOf(res.authorization.user) };
      }
      // LoginTokenMigrateTo: one DC is all the emulator and a pinned deployment have.
      throw new AppError('TG_UNAVAILABLE', 'Telegram asked to continue the QR login on another data center');
    } catch (err) {
      if (err instanceof AppError && err.code === 'TG_2FA_REQUIRED') return { result: 'password', ...(await this.#hint()) };
      throw err;
    }
  }

  async logOut(): Promise<void> {
    await this.invoke(new Api.auth.LogOut(), 'auth.logOut');
  }

  /**
   * GramJS's getInputEntity falls back to raw network calls (contacts.getContacts for a numeric
   * string, channels.getChannels …) that bypass invoke(): bounded here like every other call, else
   * a send right after a restart (empty entity cache, client still connecting) can wait forever.
   */
  inputEntity(peer: Api.TypeEntityLike): Promise<Api.TypeInputPeer> {
    if (this.#destroyed) return Promise.reject(new AppError('TG_UNAVAILABLE', 'The Telegram client was closed'));
    return withTimeout(Promise.race([this.#client.getInputEntity(peer), this.#closed]), this.#opts.callTimeoutMs, 'getInputEntity');
  }

  /**
   * Sends text with its entities (formatting.ts turns the caller's markup into both: MTProto has no
   * parse mode); `randomId` derived from our message id makes Telegram drop a repeated send.
   */
  async sendMessage(peer: Api.TypeEntityLike, text: string, randomId: bigint, opts: { silent?: boolean; replyTo?: number; entities?: TextEntity[] } = {}): Promise<string> {
    const input = await this.inputEntity(peer);
    const entities = opts.entities?.length ? toApiEntities(opts.entities, await this.#mentioned(opts.entities)) : undefined;
    try {
      const updates = await this.invoke(new Api.messages.SendMessage({
        peer: input, message: text, randomId: BigInt(randomId) as never, silent: opts.silent ?? false, noWebpage: true,
        ...(entities ? { entities } : {}),
        ...(opts.replyTo ? { replyTo: new Api.InputReplyToMessage({ replyToMsgId: opts.replyTo }) } : {}),
      }), 'messages.sendMessage');
      return String(idOfSent(updates) ?? '');
    } catch (err) {
      // Telegram already has a message with this random_id: an earlier attempt got through.
      if (err instanceof AppError && (err.cause as { errorMessage?: string } | undefined)?.errorMessage === 'RANDOM_ID_DUPLICATE') return '';
      throw err;
    }
  }

  // A mention by id (tg://user?id=) needs the user's access hash: users this account knows get a
  // real mention, like the Bot API's text_mention; others stay a tg://user link.
  async #mentioned(entities: TextEntity[]): Promise<(userId: string) => Api.TypeInputUser | undefined> {
    const users = new Map<string, Api.TypeInputUser>();
    for (const e of entities) {
      if (e.type !== 'text_mention' || users.has(e.userId!)) continue;
      const peer = await this.inputEntity(e.userId!).catch(() => undefined);
      if (peer instanceof Api.InputPeerUser) users.set(e.userId!, new Api.InputUser({ userId: peer.userId, accessHash: peer.accessHash }));
    }
    return (userId) => users.get(userId);
  }

  get client(): TelegramClient { return this.#client; }

  /** The connection dropping (state -1, once) and every raw update. */
  onEvent(handler: (event: ClientEvent) => void): void {
    this.#handlers.push(handler);
  }

  /** Bytes this client holds beyond its fixed ~150 KiB: entity rows, ~300 B each. */
  accountedBytes(): number {
    const cacheMap = (this.#client as unknown as { _entityCache: { cacheMap: Map<string, unknown> } })._entityCache.cacheMap;
    return 150 * 1024 + (this.#session.entityCount + cacheMap.size) * 300;
  }

  trim(): void {
    (this.#client as unknown as { _entityCache: { cacheMap: Map<string, unknown> } })._entityCache.cacheMap.clear();
  }

  /** destroy(), not disconnect(): the ping loop survives disconnect() (EMULATOR.md). */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#down = true;
    this.#handlers.length = 0;
    this.#fail(new AppError('TG_UNAVAILABLE', 'The Telegram client was closed'));
    await withTimeout(this.#client.destroy(), 3000, 'destroy').catch(() => undefined);
  }
}

const idOfSent = (updates: Api.TypeUpdates): number | undefined => {
  if (updates instanceof Api.UpdateShortSentMessage) return updates.id;
  if (updates instanceof Api.Updates || updates instanceof Api.UpdatesCombined) {
    for (const u of updates.updates) {
      if (u instanceof Api.UpdateMessageID) return u.id;
      if ((u instanceof Api.UpdateNewMessage || u instanceof Api.UpdateNewChannelMessage) && 'id' in u.message) return u.message.id;
    }
  }
  return undefined;
};

interface Sender {
  reconnect(): void;
  _processMessage(message: unknown): Promise<void>;
  _handlers: Record<string, (message: { obj: { messages: unknown[] } }) => Promise<void>>;
}

const MSG_CONTAINER = String(0x73f1f8dc);

/**
 * GramJS 2.26 handles a container's messages in a loop without a catch, and an rpc_error answer
 * throws after rejecting its own call: every answer after the first error in one packet is dropped,
 * and those calls wait for our call timeout (then TG_UNAVAILABLE). Telegram packs several answers into
 * one container (e.g. a keepalive's pong + getState, two sends), so one FLOOD_WAIT or revoke could
 * time out its neighbours (tests/emulator/revoked.test.ts shows it). Handle every message, then
 * rethrow the first error so GramJS's receive loop reacts to it as before. The handler table holds
 * bound functions built in MTProtoSender's constructor: the entry is replaced, not the method.
 */
function handleWholeContainers(sender: Sender): void {
  if (typeof sender._handlers?.[MSG_CONTAINER] !== 'function') return; // another GramJS: its own handling
  sender._handlers[MSG_CONTAINER] = async (message) => {
    let failure: unknown;
    for (const inner of message.obj.messages) {
      await sender._processMessage(inner).catch((err: unknown) => { failure ??= err; });
    }
    if (failure !== undefined) throw failure;
  };
}
