import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import './lean-packets.ts'; // fewer copies of each outgoing MTProto message: see lean-packets.ts
import { createHash, randomBytes } from 'node:crypto';
import { Api, TelegramClient, helpers, sessions, password as srp } from 'telegram';
import { Raw } from 'telegram/events/index.js';
import { UpdateConnectionState } from 'telegram/network/index.js';
import { AppError } from '../../errors.ts';
import { tgError } from './codes.ts';
import { metrics } from '../../observability/metrics.ts';
import { SpanKind, withSpan } from '../../observability/tracing.ts';
import { mapTelegramError } from './errors.ts';
import { createTelegramClient, type TelegramEndpoint } from './client-options.ts';
import { toApiEntities, type TextEntity } from './formatting.ts';
import type { OutboundMedia } from '../adapter.ts';

// core.telegram.org/api/files: parts of 512 KiB (the largest Telegram takes: a divisor of 512 KiB and a
// multiple of 1 KiB), upload.saveBigFilePart for files over 10 MB, at most 4000 parts.
const PART_BYTES = 512 * 1024;
const BIG_FILE_BYTES = 10 * 1024 * 1024;

/**
 * File parts being uploaded at once by all the accounts of this process (8 × 512 KiB). A part in
 * flight costs its bytes a few times over inside GramJS until the answer (serialised request, packet,
 * encrypted packet); bounding the parts keeps that flat however many media sends run. Parts are
 * ~100 ms round trips to Telegram, so 8 slots still carry ~40 MB/s.
 */
const PART_SLOTS = 8;

class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(n: number) {
    this.#free = n;
  }

  /** Waits for a slot; the function it answers gives it back (once, however often it is called). */
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

const partSlots = new Slots(PART_SLOTS);

/**
 * A file's pieces as MTProto parts of PART_BYTES (the last one shorter). Storage hands out pieces of
 * exactly one part (src/media/files.ts), which pass through as they are; other sizes are cut or
 * joined to parts.
 */
class PartReader {
  readonly #it: AsyncIterator<Buffer>;
  #left: Buffer | undefined;
  #done = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async next(): Promise<Buffer | undefined> {
    let part = this.#left;
    this.#left = undefined;
    while (!this.#done && (part?.length ?? 0) < PART_BYTES) {
      const r = await this.#it.next();
      if (r.done) this.#done = true;
      else part = part ? Buffer.concat([part, r.value]) : r.value;
    }
    if (part && part.length > PART_BYTES) {
      this.#left = part.subarray(PART_BYTES);
      part = part.subarray(0, PART_BYTES);
    }
    return part?.length ? part : undefined;
  }

  async close(): Promise<void> {
    this.#left = undefined;
    if (!this.#done) await this.#it.return?.();
  }
}

export interface SendOptions { silent?: boolean; replyTo?: number; entities?: TextEntity[] }

// One GramJS client per user account, used step by step (no client.start() callbacks). GramJS
// traps (EMULATOR.md): connect() can hang forever, in-flight invokes are not rejected on
// disconnect, and a client whose connect() failed hangs later calls — so every call has our own
// timeout and a failed client is destroyed, never reused.

export interface Profile { platformUserId: string; displayName: string; username?: string }
export type SignInResult = { result: 'ok'; profile: Profile } | { result: 'password'; hint?: string };
export type ClientEvent = { type: 'state'; state: number } | { type: 'update'; update: Api.TypeUpdate | Api.TypeUpdates };
export type QrResult = { result: 'token'; url: string; expiresAt: number } | SignInResult;
/** A QR login accepted by an account of another DC: finish it there with importQr(token). */
export type QrMigration = { result: 'migrate'; dc: number; token: Buffer };

/**
 * Telegram serves the account (or this phone number) from another DC: PHONE_MIGRATE_X,
 * USER_MIGRATE_X, NETWORK_MIGRATE_X. Carried as the `cause` of a TG_UNAVAILABLE so that a caller
 * that does not follow migrations still sees a retryable error.
 */
export class DcMigration extends Error {
  constructor(readonly dc: number) {
    super(`Telegram serves this request from DC ${dc}`);
  }
}

/** The DC a Telegram error asks to move to, if it is a *_MIGRATE_X. */
export function migrationOf(err: unknown): number | undefined {
  const cause = err instanceof AppError ? err.cause : err;
  if (cause instanceof DcMigration) return cause.dc;
  const newDc = (cause as { newDc?: unknown } | undefined)?.newDc;
  return typeof newDc === 'number' && newDc > 0 ? newDc : undefined;
}

export interface DcAddress { host: string; port: number }

export interface AccountClientOptions extends TelegramEndpoint {
  apiId: number;
  apiHash: string;
  // Telegram answers in well under a second; 15 s means the socket is dead.
  callTimeoutMs?: number;
  connectTimeoutMs?: number;
  // Entities kept per account. Each row costs ~0.3 KiB, so 2000 rows stay under 1 MiB of the 50 MB budget.
  entityCacheMax?: number;
  /**
   * ping_delay_disconnect's disconnect_delay (s): the DC closes the socket when no ping follows
   * within it. With several daemons it must let a frozen node's sockets close before another node
   * may use the same keys (config.ts: derived from LEASE_TTL_MS, 20 s by default).
   */
  disconnectDelayS?: number;
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

// Seconds the DC waits for the next ping before closing the socket, when the daemon does not say
// (disconnectDelayS): with the driver's 60 s heartbeat (±10%, ≤ 66 s), 90 s leaves room for a loop
// stalled by a mass reconnect (Telegram's own clients use 75 s with a 60 s ping).
const KEEPALIVE_DISCONNECT_S = 90;

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(tgError('TG_UNAVAILABLE', `Telegram did not answer ${what} within ${ms} ms: is it reachable from here (network, firewall, TELEGRAM_DC)?`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

/** How the code was sent, in API.md's words (login.codeType), and what a resend would use. */
export type CodeType = 'app' | 'sms' | 'call' | 'flash-call' | 'missed-call' | 'email' | 'fragment';
export interface SentCode { phoneCodeHash: string; codeType: CodeType; nextType?: CodeType; length?: number; resendAfter?: number }

function sentTypeOf(t: Api.auth.TypeSentCodeType): CodeType {
  if (t instanceof Api.auth.SentCodeTypeApp) return 'app';
  if (t instanceof Api.auth.SentCodeTypeCall) return 'call';
  if (t instanceof Api.auth.SentCodeTypeFlashCall) return 'flash-call';
  if (t instanceof Api.auth.SentCodeTypeMissedCall) return 'missed-call';
  if (t instanceof Api.auth.SentCodeTypeEmailCode || t instanceof Api.auth.SentCodeTypeSetUpEmailRequired) return 'email';
  if (t instanceof Api.auth.SentCodeTypeFragmentSms) return 'fragment';
  return 'sms'; // SentCodeTypeSms and Telegram's newer SMS variants (word, phrase, Firebase)
}

function nextTypeOf(t: Api.auth.TypeCodeType | undefined): CodeType | undefined {
  if (t instanceof Api.auth.CodeTypeSms) return 'sms';
  if (t instanceof Api.auth.CodeTypeCall) return 'call';
  if (t instanceof Api.auth.CodeTypeFlashCall) return 'flash-call';
  if (t instanceof Api.auth.CodeTypeMissedCall) return 'missed-call';
  if (t instanceof Api.auth.CodeTypeFragmentSms) return 'fragment';
  return undefined;
}

function sentCodeOf(sent: Api.auth.SentCode): SentCode {
  const length = (sent.type as { length?: number }).length;
  return {
    phoneCodeHash: sent.phoneCodeHash, codeType: sentTypeOf(sent.type),
    ...(nextTypeOf(sent.nextType) ? { nextType: nextTypeOf(sent.nextType) } : {}),
    ...(length ? { length } : {}),
    // timeout: seconds before auth.resendCode may be called.
    ...(sent.timeout ? { resendAfter: Date.now() + sent.timeout * 1000 } : {}),
  };
}

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
    this.#fail(tgError('TG_UNAVAILABLE', 'The connection to Telegram dropped'));
    this.#emit({ type: 'state', state: UpdateConnectionState.disconnected });
  }

  #emit(event: ClientEvent): void {
    for (const handler of this.#handlers) handler(event);
  }

  /** Connects with a saved session (no DH, no login) or a fresh key. Throws AppError; never leaves a half-open client. */
  static async open(sessionString: string | undefined, options: AccountClientOptions): Promise<AccountClient> {
    return AccountClient.#open(sessionString, undefined, options);
  }

  /** A fresh key on DC `dc` at `address` (a migration): a new DH there, no login yet. */
  static async openOn(dc: number, address: DcAddress, options: AccountClientOptions): Promise<AccountClient> {
    return AccountClient.#open(undefined, { dc, ...address }, options);
  }

  static async #open(sessionString: string | undefined, at: ({ dc: number } & DcAddress) | undefined, options: AccountClientOptions): Promise<AccountClient> {
    const opts = { callTimeoutMs: 15_000, connectTimeoutMs: 10_000, entityCacheMax: 2000, ...options };
    const session = new BoundedSession(sessionString, opts.entityCacheMax);
    if (at) session.setDC(at.dc, at.host, at.port);
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
    // GramJS answers *_MIGRATE_X by switching this client's DC in place (getDC: port 443, the pinned
    // connection ignores it anyway), drops the key and reconnects under our feet, then with
    // requestRetries 1 fails the call — and the switched session is never saved. The driver follows
    // the migration instead (a new client on that DC, its session saved): stop before GramJS touches anything.
    (client as unknown as { _switchDC(dc: number): Promise<void> })._switchDC = async (dc: number) => {
      throw tgError('TG_UNAVAILABLE', `Telegram serves this account from DC ${dc}`, { cause: new DcMigration(dc) });
    };
    const account = new AccountClient(client, session, opts);
    try {
      await withTimeout(Promise.race([client.connect(), account.#closed]), opts.connectTimeoutMs, 'connect');
    } catch (err) {
      await account.destroy();
      throw mapTelegramError(err);
    }
    // The DC's disconnect timer runs from the first ping: a node that froze before its first
    // heartbeat would otherwise hold this socket (and its auth key) open indefinitely.
    if (opts.disconnectDelayS !== undefined) void account.ping().catch(() => undefined);
    return account;
  }

  /** The DC this client's session lives on. */
  get dcId(): number { return this.#session.dcId; }

  /** Where DC `dc` listens, from help.getConfig's dc_options (IPv4, not media-only or CDN). */
  async dcAddress(dc: number): Promise<DcAddress> {
    const config = await this.invoke(new Api.help.GetConfig(), 'help.getConfig');
    const option = config.dcOptions.find((o) => o.id === dc && !o.ipv6 && !o.mediaOnly && !o.cdn && !o.tcpoOnly)
      ?? config.dcOptions.find((o) => o.id === dc && !o.mediaOnly && !o.cdn);
    if (!option) throw tgError('TG_UNAVAILABLE', `Telegram lists no address for DC ${dc}`);
    return { host: option.ipAddress, port: option.port };
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
    if (this.#destroyed) throw tgError('TG_UNAVAILABLE', 'The Telegram client was closed');
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
   * disconnectDelayS, so a client that vanished or froze frees its connection there) and, with
   * `state`, updates.getState (Telegram wants a content request now and then to keep sending
   * updates, and it answers AUTH_KEY_UNREGISTERED once the session is revoked). Both go out in one
   * container. False when the session is revoked; throws TG_UNAVAILABLE when the link is dead or too slow.
   */
  async keepalive(state = true): Promise<boolean> {
    const ping = this.ping();
    if (state && !(await this.isAuthorized())) return false;
    await ping;
    return true;
  }

  /** ping_delay_disconnect alone: arms (or re-arms) the DC's disconnect timer for this socket. */
  ping(): Promise<unknown> {
    if (this.#destroyed) return Promise.reject(tgError('TG_UNAVAILABLE', 'The Telegram client was closed'));
    const sender = (this.#client as unknown as { _sender: { send(r: Api.PingDelayDisconnect): Promise<unknown> } })._sender;
    const disconnectDelay = this.#opts.disconnectDelayS ?? KEEPALIVE_DISCONNECT_S;
    const ping = withTimeout(Promise.race([
      sender.send(new Api.PingDelayDisconnect({ pingId: helpers.returnBigInt(randomBytes(8).readBigInt64LE(0)), disconnectDelay })),
      this.#closed,
    ]), this.#opts.callTimeoutMs, 'ping');
    ping.catch(() => undefined);
    return ping;
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

  async sendCode(phone: string): Promise<SentCode> {
    const sent = await this.invoke(new Api.auth.SendCode({
      phoneNumber: phone, apiId: this.#opts.apiId, apiHash: this.#opts.apiHash, settings: new Api.CodeSettings({}),
    }), 'auth.sendCode');
    if (!(sent instanceof Api.auth.SentCode)) throw tgError('TG_UNAVAILABLE', 'Telegram answered sendCode unexpectedly');
    return sentCodeOf(sent);
  }

  /** auth.resendCode: the code again by Telegram's next way (next_type); a new phone_code_hash. */
  async resendCode(phone: string, phoneCodeHash: string): Promise<SentCode> {
    const sent = await this.invoke(new Api.auth.ResendCode({ phoneNumber: phone, phoneCodeHash }), 'auth.resendCode');
    if (!(sent instanceof Api.auth.SentCode)) throw tgError('TG_UNAVAILABLE', 'Telegram answered resendCode unexpectedly');
    return sentCodeOf(sent);
  }

  async signIn(phone: string, phoneCodeHash: string, code: string): Promise<SignInResult> {
    try {
      const auth = await this.invoke(new Api.auth.SignIn({ phoneNumber: phone, phoneCodeHash, phoneCode: code }), 'auth.signIn');
      if (auth instanceof Api.auth.AuthorizationSignUpRequired) throw tgError('TG_PHONE_INVALID', 'This phone number has no Telegram account', { status: 422 });
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
    if (!(auth instanceof Api.auth.Authorization)) throw tgError('TG_UNAVAILABLE', 'Telegram answered checkPassword unexpectedly');
    return profileOf(auth.user);
  }

  /** auth.requestPasswordRecovery: a code goes to the recovery e-mail; answers its pattern (a***@example.org). */
  async requestPasswordRecovery(): Promise<string> {
    const res = await this.invoke(new Api.auth.RequestPasswordRecovery(), 'auth.requestPasswordRecovery');
    return res.emailPattern;
  }

  /**
   * auth.recoverPassword with the e-mailed code: signs in and removes the 2FA password, or sets
   * `newPassword` (its SRP verifier, computed here with Telegram's new_algo; the text is used once).
   */
  async recoverPassword(code: string, newPassword?: string): Promise<Profile> {
    let newSettings: Api.account.PasswordInputSettings | undefined;
    if (newPassword) {
      const pw = await this.invoke(new Api.account.GetPassword(), 'account.getPassword');
      const algo = pw.newAlgo as Api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow;
      // The client extends the server's salt1 with its own random bytes (core.telegram.org/api/srp).
      const newAlgo = new Api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow({
        salt1: Buffer.concat([algo.salt1, randomBytes(32)]), salt2: algo.salt2, g: algo.g, p: algo.p,
      });
      newSettings = new Api.account.PasswordInputSettings({ newAlgo, newPasswordHash: await srp.computeDigest(newAlgo, newPassword), hint: '' });
    }
    const auth = await this.invoke(new Api.auth.RecoverPassword({ code, ...(newSettings ? { newSettings } : {}) }), 'auth.recoverPassword');
    if (!(auth instanceof Api.auth.Authorization)) throw tgError('TG_UNAVAILABLE', 'Telegram answered recoverPassword unexpectedly');
    return profileOf(auth.user);
  }

  /** A QR login token, the login's end once a device accepted it (success or 2FA), or the DC to finish it on. */
  async exportQr(): Promise<QrResult | QrMigration> {
    return this.#qr(() => this.invoke(new Api.auth.ExportLoginToken({ apiId: this.#opts.apiId, apiHash: this.#opts.apiHash, exceptIds: [] }), 'auth.exportLoginToken'));
  }

  /** The second half of a QR login accepted on another DC: auth.importLoginToken on this (the account's) DC. */
  async importQr(token: Buffer): Promise<QrResult> {
    const res = await this.#qr(() => this.invoke(new Api.auth.ImportLoginToken({ token }), 'auth.importLoginToken'));
    if (res.result === 'migrate') throw tgError('TG_UNAVAILABLE', `Telegram moved the QR login again, to DC ${res.dc}`);
    return res;
  }

  async #qr(call: () => Promise<Api.auth.TypeLoginToken>): Promise<QrResult | QrMigration> {
    try {
      const res = await call();
      if (res instanceof Api.auth.LoginToken) {
        const token = Buffer.from(res.token).toString('base64url');
        return { result: 'token', url: `tg://login?token=${token}`, expiresAt: res.expires * 1000 };
      }
      if (res instanceof Api.auth.LoginTokenSuccess && res.authorization instanceof Api.auth.Authorization) {
        return { result: 'ok', profile: profileOf(res.authorization.user) };
      }
      if (res instanceof Api.auth.LoginTokenMigrateTo) return { result: 'migrate', dc: res.dcId, token: Buffer.from(res.token) };
      throw tgError('TG_UNAVAILABLE', 'Telegram answered the QR login unexpectedly');
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
    if (this.#destroyed) return Promise.reject(tgError('TG_UNAVAILABLE', 'The Telegram client was closed'));
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

  /**
   * Uploads a file in parts (the same file_id on a resend: Telegram keeps the newest copy of each part)
   * and sends it with `caption`; `randomId` makes Telegram drop a repeated send as for text. The file
   * is read from storage as the parts go out: one part in memory at a time.
   */
  async sendMedia(peer: Api.TypeEntityLike, media: OutboundMedia, caption: string, randomId: bigint, fileId: bigint, opts: SendOptions = {}): Promise<string> {
    const input = await this.inputEntity(peer);
    const entities = opts.entities?.length ? toApiEntities(opts.entities, await this.#mentioned(opts.entities)) : undefined;
    const file = await this.#upload(media, fileId);
    const attributes: Api.TypeDocumentAttribute[] = [new Api.DocumentAttributeFilename({ fileName: media.filename })];
    if (media.type === 'video' || media.type === 'animation') attributes.push(new Api.DocumentAttributeVideo({ duration: 0, w: 0, h: 0, supportsStreaming: media.type === 'video' }));
    if (media.type === 'animation') attributes.push(new Api.DocumentAttributeAnimated());
    if (media.type === 'audio' || media.type === 'voice') attributes.push(new Api.DocumentAttributeAudio({ duration: 0, voice: media.type === 'voice' }));
    const inputMedia = media.type === 'photo'
      ? new Api.InputMediaUploadedPhoto({ file })
      : new Api.InputMediaUploadedDocument({ file, mimeType: media.contentType, attributes, forceFile: media.type === 'document' });
    try {
      const updates = await this.invoke(new Api.messages.SendMedia({
        peer: input, media: inputMedia, message: caption, randomId: BigInt(randomId) as never, silent: opts.silent ?? false,
        ...(entities ? { entities } : {}),
        ...(opts.replyTo ? { replyTo: new Api.InputReplyToMessage({ replyToMsgId: opts.replyTo }) } : {}),
      }), 'messages.sendMedia');
      return String(idOfSent(updates) ?? '');
    } catch (err) {
      if (err instanceof AppError && (err.cause as { errorMessage?: string } | undefined)?.errorMessage === 'RANDOM_ID_DUPLICATE') return '';
      throw err;
    }
  }

  async #upload(media: OutboundMedia, fileId: bigint): Promise<Api.TypeInputFile> {
    if (media.size <= 0) throw new AppError('VALIDATION_ERROR', 'the file is empty');
    const big = media.size > BIG_FILE_BYTES;
    const parts = Math.ceil(media.size / PART_BYTES);
    const md5 = big ? undefined : createHash('md5');
    const id = BigInt(fileId) as never;
    const source = new PartReader(media.read());
    let part = 0;
    try {
      // Each part is read from storage inside its slot and let go once Telegram has it: a send holds
      // one part, and the daemon at most PART_SLOTS parts, whatever the number of sends.
      for (;;) {
        const release = await partSlots.acquire();
        try {
          const bytes = await source.next();
          if (!bytes) break;
          md5?.update(bytes);
          await (big
            ? this.invoke(new Api.upload.SaveBigFilePart({ fileId: id, filePart: part, fileTotalParts: parts, bytes }), 'upload.saveBigFilePart')
            : this.invoke(new Api.upload.SaveFilePart({ fileId: id, filePart: part, bytes }), 'upload.saveFilePart'));
          part++;
        } finally {
          release();
        }
      }
    } finally {
      await source.close();
    }
    if (part !== parts) throw new AppError('INTERNAL', `the stored file has ${part} parts of 512 KiB, its size says ${parts}`);
    return big
      ? new Api.InputFileBig({ id, parts, name: media.filename })
      : new Api.InputFile({ id, parts, name: media.filename, md5Checksum: md5!.digest('hex') });
  }

  /** Edits a message's text (a caption, for a file). True when Telegram says it already has it (MESSAGE_NOT_MODIFIED). */
  async editMessage(peer: Api.TypeEntityLike, id: number, text: string, entities: TextEntity[] = []): Promise<boolean> {
    const input = await this.inputEntity(peer);
    const apiEntities = entities.length ? toApiEntities(entities, await this.#mentioned(entities)) : undefined;
    try {
      await this.invoke(new Api.messages.EditMessage({ peer: input, id, message: text, noWebpage: true, ...(apiEntities ? { entities: apiEntities } : {}) }), 'messages.editMessage');
      return false;
    } catch (err) {
      if (err instanceof AppError && (err.cause as { errorMessage?: string } | undefined)?.errorMessage === 'MESSAGE_NOT_MODIFIED') return true;
      throw err;
    }
  }

  /**
   * Deletes a message for everyone: channels.deleteMessages in channels and supergroups,
   * messages.deleteMessages (revoke) elsewhere. A message already gone is no error (Telegram skips it).
   */
  async deleteMessage(peer: Api.TypeEntityLike, id: number): Promise<void> {
    const input = await this.inputEntity(peer);
    if (input instanceof Api.InputPeerChannel) {
      await this.invoke(new Api.channels.DeleteMessages({ channel: new Api.InputChannel({ channelId: input.channelId, accessHash: input.accessHash }), id: [id] }), 'channels.deleteMessages');
    } else {
      await this.invoke(new Api.messages.DeleteMessages({ id: [id], revoke: true }), 'messages.deleteMessages');
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
    this.#fail(tgError('TG_UNAVAILABLE', 'The Telegram client was closed'));
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
