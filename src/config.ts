// Every setting comes from the environment and is checked once, at start-up: a bad value stops the
// daemon with one line naming the variable, instead of failing later inside some adapter.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { inspect } from 'node:util';
import { join, resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { addressList } from './net/address-list.ts';
import { notPrivate, privateDir } from './private-path.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'verbose' | 'debug' | 'silly';

export interface Config {
  port: number;
  host: string;
  /** undefined → embedded PGlite under dataDir/pglite */
  databaseUrl?: string;
  embeddedDatabase: boolean;
  dataDir: string;
  redisUrl?: string;
  amqp: { url?: string; caFile?: string; certFile?: string; keyFile?: string; servername?: string };
  vault: { addr?: string; token?: string; roleId?: string; secretId?: string; transitMount: string; transitKey: string };
  /** key: the 32 raw bytes of KEYRING_KEY; without it the keyring lives in file */
  keyring: { key?: Buffer; file: string; rotateDays: number };
  /** secret is undefined only when jwksUrl is set; secretFile is set when it was generated/kept on disk */
  jwt: { secret?: string; secretFile?: string; jwksUrl?: string; issuer?: string; audience?: string; /** JWT_MAX_LIFETIME_S; always set by loadConfig */ maxLifetimeSec?: number };
  /** PUBLIC_URL as given (no trailing slash); undefined when unset */
  publicUrl?: string;
  corsOrigins: string[];
  logLevel: LogLevel;
  /** LOG_FORMAT; unset: pretty on a terminal, ECS JSON otherwise */
  logFormat?: 'json' | 'pretty';
  telegram: {
    apiId?: number; apiHash?: string; dc?: { host: string; port: number }; serverKeysFile?: string; botApiUrl: string;
    /** account connects in flight at once (TELEGRAM_CONNECT_CONCURRENCY); unset = the platform's default, 16 */
    connectConcurrency?: number;
  };
  /** Meta's Graph API (WhatsApp Cloud API): host, version, and the app's webhook secrets. */
  meta: { graphUrl: string; graphVersion: string; appId?: string; appSecret?: string; verifyToken?: string };
  /** Instagram (API with Instagram Login) and Threads; registered only with META_APP_ID and META_APP_SECRET. */
  instagram: { apiUrl: string; oauthUrl?: string };
  threads: { apiUrl: string; oauthUrl?: string };
  /** YouTube (Google OAuth); registered only with GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET. */
  youtube: {
    clientId?: string; clientSecret?: string; oauthUrl?: string; apiUrl: string; uploadUrl: string;
    /** Data API quota of the Google Cloud project (YOUTUBE_QUOTA_UNITS_PER_DAY, _INSERT_UNITS, _UPLOADS_PER_DAY; 0 = no bucket). */
    unitsPerDay: number; insertUnits: number; uploadsPerDay: number;
    chunkMb: number;
  };
  /** TikTok (Login Kit v2); registered only with TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET. */
  tiktok: { clientKey?: string; clientSecret?: string; oauthUrl: string; apiUrl: string; chunkMb: number; privacy: string };
  shards: number;
  /** Several daemons on one database (API.md "Several daemons"): this node's name and the shard lease timings. */
  cluster: {
    nodeId: string; leaseTtlMs: number; leaseDeadlineMs: number; leaseRenewMs: number;
    /** ping_delay_disconnect's disconnect_delay for Telegram accounts (s), and how often they ping (ms). */
    disconnectDelayS: number; pingMs: number;
    /** How long after an unreleased lease's expiry its shard's connections may start on the taker. */
    takeoverGraceMs: number;
    /** NODE_URL: where peers reach this node's HTTP port (forwarded calls); default http://HOST:PORT */
    nodeUrl?: string;
    /** CLUSTER_SECRET: signs calls between nodes; default derived from KEYRING_KEY or JWT_SECRET */
    secret?: string;
  };
  memoryBudgetMb: number;
  /** resolved: PROCESS_MEMORY_LIMIT_MB, or the V8 heap limit when that is 0 */
  processMemoryLimitMb: number;
  restart: { max: number; windowS: number };
  breakerHalfOpenS: number;
  backoff: { baseMs: number; capMs: number };
  rateLimit: { connect: number; send: number; status: number; manage: number; perAddress: number; trustedProxies: string[] };
  /** slow clients and the connection cap of the HTTP listener */
  listener: { requestTimeoutMs: number; maxConnections: number; overloadLagMs: number };
  retentionDays: number;
  /** CONSENT_REQUIRED: connecting and sending need a granted `processing` consent (API.md "Consent (GDPR)"). */
  consentRequired: boolean;
  /** Per-owner limits (the JWT `sub`); see quotaDefaults for the reasons behind the numbers. */
  quotas: Quotas;
  /** A message still `queued` this long after it was accepted ends `failed` with MESSAGE_EXPIRED. */
  messageQueueTtlHours: number;
  /** EVENT_RETENTION_HOURS: stored events (replay, log, publishers' cursors) are deleted this long after they occurred. */
  eventRetentionHours: number;
  /** MESSAGE_STATUS_EVENTS: which message.status changes are stored as events (see StatusEvents). */
  messageStatusEvents: StatusEvents;
  pace: { chatPerS: number; groupPerMin: number; botPerS: number };
  otelEndpoint?: string;
  shutdownTimeoutMs: number;
  /** Files for media messages (POST /v1/uploads) and media fetched from URLs. */
  media: MediaConfig;
}

export interface MediaConfig {
  /** UPLOAD_MAX_MB in bytes: an upload or a fetched URL larger than this is refused (413 / MEDIA_FETCH_FAILED). */
  maxBytes: number;
  /** UPLOAD_RETENTION_HOURS: an upload no unsent message uses is deleted this long after it was made. */
  retentionHours: number;
  /** UPLOAD_TIMEOUT_MS: the whole upload body must arrive within this (the API's REQUEST_TIMEOUT_MS is for small bodies). */
  uploadTimeoutMs: number;
  /** EGRESS_ALLOW_HOSTS: host or host:port entries that may be fetched over http and at private addresses. */
  egressAllowHosts: string[];
}

type Env = Record<string, string | undefined>;

/**
 * `all`: an event for every status a message takes (queued, sending, sent, a retry's return to
 * queued, …). `outcomes`: none for accepted, sending or rescheduled; one for sent, failed or cancelled,
 * for platform statuses (delivered, read) and for edits and deletes. Each event is a row, a broker
 * publish and a frame per subscriber, and a sent message takes three under `all`.
 */
export type StatusEvents = 'all' | 'outcomes';
const statusEventModes: readonly StatusEvents[] = ['all', 'outcomes'];

export interface Quotas {
  connectionsPerOwner: number;
  chatsPerConnection: number;
  /** messages `queued` or `sending`: accepted, not yet sent or failed */
  queuedMessagesPerOwner: number;
  /** not a refusal: the retention job prunes an owner's oldest audit rows beyond this */
  auditRowsPerOwner: number;
}

// A refusal (QUOTA_EXCEEDED) protects the other tenants of the same daemon from one token that
// stores without end; the defaults sit well above what one person's product account needs.
export const quotaDefaults: Readonly<Quotas> = {
  // Each connection is a live actor with an MTProto session or a Bot API poller (budget 50 MB,
  // typically a few MB): 100 keeps one owner under 1% of a node sized for 10,000 connections,
  // and is 10-20x the handful of accounts and bots one product user links.
  connectionsPerOwner: 100,
  // Telegram itself lets a (non-Premium) account join at most 500 channels and supergroups.
  chatsPerConnection: 500,
  // A bot drains 10,000 in ~6 min at 30 msg/s; 20 full batches of 500; ~10 MB of outbox rows.
  queuedMessagesPerOwner: 10_000,
  // ~250 bytes a row with its indexes: ~60 MB per owner, or ~8,000 audited actions a day for
  // the whole 30-day retention before the oldest rows are pruned (never a refused action).
  auditRowsPerOwner: 250_000,
};
// Rides out a weekend with a connection down (its messages parked), and an owner's forgotten
// queue frees its quota within 3 days instead of never.
const defaultQueueTtlHours = 72;

const logLevels: readonly LogLevel[] = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];
// HS256 needs a key at least as long as its 256-bit output to be worth anything (RFC 7518 §3.2).
const minJwtSecret = 32;

const internals = {
  str(env: Env, name: string): string | undefined {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v; // compose files often pass VAR= for "unset"
  },
  int(env: Env, name: string, def: number, min: number, max: number): number {
    const raw = internals.str(env, name);
    if (raw === undefined) return def;
    const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(`${name} must be an integer ${min}..${max}, got "${raw}"`);
    }
    return n;
  },
  oneOf<T extends string>(env: Env, name: string, values: readonly T[], def: T): T {
    const raw = internals.str(env, name)?.toLowerCase();
    if (raw === undefined) return def;
    if (!values.includes(raw as T)) throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${raw}"`);
    return raw as T;
  },
  bool(env: Env, name: string, def: boolean): boolean {
    const raw = internals.str(env, name)?.toLowerCase();
    if (raw === undefined) return def;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  },
  /** An http(s) base URL without its trailing slashes (paths are appended with a leading one). */
  baseUrl(env: Env, name: string): string | undefined {
    return internals.url(env, name, ['http:', 'https:'])?.replace(/(?<!\/)\/+$/, '');
  },
  url(env: Env, name: string, schemes: string[]): string | undefined {
    const raw = internals.str(env, name);
    if (raw === undefined) return undefined;
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new ConfigError(`${name} must be a URL (${schemes.join(' or ')}//…), got "${internals.redactUrl(raw)}"`);
    }
    if (!schemes.includes(u.protocol)) {
      throw new ConfigError(`${name} must use ${schemes.join(' or ')}, got "${u.protocol}"`);
    }
    return raw;
  },
  file(env: Env, name: string): string | undefined {
    const raw = internals.str(env, name);
    if (raw === undefined) return undefined;
    const path = resolve(raw);
    if (!existsSync(path) || !statSync(path).isFile()) throw new ConfigError(`${name} must name an existing file, got "${raw}"`);
    return path;
  },
  // Credentials in URLs (postgres://user:pass@…) must not leak through errors or describeConfig.
  redactUrl(raw: string): string {
    try {
      const u = new URL(raw);
      if (u.password) u.password = '***';
      return u.toString();
    } catch {
      return raw.replace(/\/\/[^@/]*@/, '//***@');
    }
  },
  hostPort(env: Env, name: string): { host: string; port: number } | undefined {
    const raw = internals.str(env, name);
    if (raw === undefined) return undefined;
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(raw);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) throw new ConfigError(`${name} must be host:port with port 1..65535, got "${raw}"`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  },
  // TTL 20 s, deadline 12 s, renew 3 s: three renewals may fail before a node fences itself, and the 8 s
  // between its deadline and the lease's expiry cover a stalled event loop and clock-rate drift.
  cluster(env: Env): Config['cluster'] {
    const nodeId = internals.str(env, 'NODE_ID') ?? `${hostname()}-${process.pid}`;
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(nodeId)) throw new ConfigError(`NODE_ID must be 1..128 letters, digits or . _ : -, got "${nodeId}"`);
    const leaseTtlMs = internals.int(env, 'LEASE_TTL_MS', 20_000, 500, 600_000);
    const leaseDeadlineMs = internals.int(env, 'LEASE_DEADLINE_MS', Math.floor(leaseTtlMs * 0.6), 100, 600_000);
    const leaseRenewMs = internals.int(env, 'LEASE_RENEW_MS', Math.floor(leaseTtlMs * 0.15), 50, 600_000);
    if (leaseDeadlineMs >= leaseTtlMs) throw new ConfigError(`LEASE_DEADLINE_MS must be below LEASE_TTL_MS (${leaseTtlMs}), got ${leaseDeadlineMs}`);
    if (leaseRenewMs * 2 > leaseDeadlineMs) throw new ConfigError(`LEASE_RENEW_MS must be at most half of LEASE_DEADLINE_MS (${leaseDeadlineMs}), got ${leaseRenewMs}`);
    // A frozen node cannot close its sockets; Telegram drops each one disconnect_delay after its last
    // ping. The frozen node pinged at the latest at its deadline, TTL - deadline before the expiry, so
    // a taker waits disconnect_delay + deadline - TTL (+1 s for the DC's timer) after the expiry, and a
    // node killed on another host runs elsewhere TTL + that grace after its last renewal. Default
    // disconnect_delay = TTL = 20 s: grace 20 + 12 - 20 + 1 = 13 s, connections start elsewhere <= 33 s
    // after a crash, leaving 7 s of the 40 s asked for their reconnects (bench:cluster-scale: 214
    // connections took ~5 s on 2 loaded cores; 30 s gave a grace of 23 s, 43 s before any reconnect).
    // Pings every 20 / 3 = 6.7 s (+-10%, so <= 7.3 s apart): a loop may stall ~12.7 s before the DC
    // drops a healthy connection, about the lease deadline (12 s) after which the node fences itself
    // anyway. 10,000 accounts make ~1,500 pings/s.
    const disconnectDelayS = internals.int(env, 'TELEGRAM_DISCONNECT_DELAY_S', Math.ceil(leaseTtlMs / 1000), 3, 3600);
    const pingMs = Math.floor(disconnectDelayS * 1000 / 3);
    const takeoverGraceMs = Math.max(0, disconnectDelayS * 1000 + leaseDeadlineMs - leaseTtlMs + 1000);
    let nodeUrl = internals.url(env, 'NODE_URL', ['http:', 'https:']);
    while (nodeUrl?.endsWith('/')) nodeUrl = nodeUrl.slice(0, -1);
    const secret = internals.str(env, 'CLUSTER_SECRET');
    if (secret !== undefined && secret.length < 32) throw new ConfigError(`CLUSTER_SECRET must be at least 32 characters, got ${secret.length}`);
    return {
      nodeId, leaseTtlMs, leaseDeadlineMs, leaseRenewMs, disconnectDelayS, pingMs, takeoverGraceMs,
      ...(nodeUrl && { nodeUrl }), ...(secret !== undefined && { secret }),
    };
  },
  keyringKey(env: Env): Buffer | undefined {
    const raw = internals.str(env, 'KEYRING_KEY');
    if (raw === undefined) return undefined;
    const buf = /^[A-Za-z0-9+/]+={0,2}$/.test(raw) && raw.length % 4 === 0 ? Buffer.from(raw, 'base64') : undefined;
    if (!buf || buf.length !== 32) {
      // The value itself is a secret: report only what is wrong with it.
      throw new ConfigError(`KEYRING_KEY must be base64 of exactly 32 bytes, got ${buf ? `${buf.length} bytes` : 'a value that is not base64'}`);
    }
    return buf;
  },
  jwt(env: Env, embedded: boolean, dataDir: string): Omit<Config['jwt'], 'maxLifetimeSec'> {
    const jwksUrl = internals.url(env, 'JWT_JWKS_URL', ['http:', 'https:']);
    const issuer = internals.str(env, 'JWT_ISSUER');
    const audience = internals.str(env, 'JWT_AUDIENCE');
    const opt = { ...(jwksUrl && { jwksUrl }), ...(issuer && { issuer }), ...(audience && { audience }) };
    const secret = internals.str(env, 'JWT_SECRET');
    if (secret !== undefined) {
      if (secret.length < minJwtSecret) throw new ConfigError(`JWT_SECRET must be at least ${minJwtSecret} characters, got ${secret.length}`);
      return { secret, ...opt };
    }
    if (jwksUrl) return opt;
    if (!embedded) throw new ConfigError('JWT_SECRET is required (at least 32 characters) unless JWT_JWKS_URL is set or DATABASE_URL is unset (embedded mode)');
    return { ...internals.keptSecret(dataDir), ...opt };
  },
  // Embedded mode is the zero-setup path: generate a secret once and keep it so tokens survive restarts.
  keptSecret(dataDir: string): { secret: string; secretFile: string } {
    const secretFile = join(dataDir, 'jwt-secret');
    let refused: string | null;
    try {
      refused = privateDir(dataDir, 'DATA_DIR');
    } catch (err) {
      throw new ConfigError(`DATA_DIR must be writable to keep the generated JWT secret, could not create ${dataDir}: ${(err as Error).message}`);
    }
    if (refused) throw new ConfigError(refused);
    if (existsSync(secretFile)) {
      // Whoever reads it mints admin tokens: held to the keyring file's rule, owner only.
      refused = notPrivate(secretFile, 'JWT secret file');
      if (refused) throw new ConfigError(refused);
      const secret = readFileSync(secretFile, 'utf8').trim();
      if (secret.length < minJwtSecret) throw new ConfigError(`JWT_SECRET kept in ${secretFile} must be at least ${minJwtSecret} characters, got ${secret.length}; delete the file to generate a new one`);
      return { secret, secretFile };
    }
    try {
      const secret = randomBytes(48).toString('base64url'); // 384 bits, 64 characters
      writeFileSync(secretFile, `${secret}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(secretFile, 0o600); // the umask may have narrowed the mode further, never widened it; be exact
      return { secret, secretFile };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return internals.keptSecret(dataDir); // another process won the race
      throw new ConfigError(`DATA_DIR must be writable to keep the generated JWT secret, could not write ${secretFile}: ${(err as Error).message}`);
    }
  },
  vault(env: Env): Config['vault'] {
    const addr = internals.url(env, 'VAULT_ADDR', ['http:', 'https:']);
    const token = internals.str(env, 'VAULT_TOKEN');
    const roleId = internals.str(env, 'VAULT_ROLE_ID');
    const secretId = internals.str(env, 'VAULT_SECRET_ID');
    if (Boolean(roleId) !== Boolean(secretId)) throw new ConfigError('VAULT_ROLE_ID and VAULT_SECRET_ID must be set together (AppRole login)');
    if (addr && !token && !roleId) throw new ConfigError('VAULT_TOKEN or VAULT_ROLE_ID + VAULT_SECRET_ID is required when VAULT_ADDR is set');
    const transitMount = internals.str(env, 'VAULT_TRANSIT_MOUNT') ?? 'transit';
    const transitKey = internals.str(env, 'VAULT_TRANSIT_KEY') ?? 'integration-service';
    return { ...(addr && { addr }), ...(token && { token }), ...(roleId && { roleId }), ...(secretId && { secretId }), transitMount, transitKey };
  },
  amqp(env: Env): Config['amqp'] {
    const url = internals.url(env, 'AMQP_URL', ['amqp:', 'amqps:']);
    const caFile = internals.file(env, 'AMQP_CA_FILE');
    const certFile = internals.file(env, 'AMQP_CERT_FILE');
    const keyFile = internals.file(env, 'AMQP_KEY_FILE');
    const servername = internals.str(env, 'AMQP_SERVERNAME');
    if (Boolean(certFile) !== Boolean(keyFile)) throw new ConfigError('AMQP_CERT_FILE and AMQP_KEY_FILE must be set together (client certificate)');
    return { ...(url && { url }), ...(caFile && { caFile }), ...(certFile && { certFile }), ...(keyFile && { keyFile }), ...(servername && { servername }) };
  },
  telegram(env: Env): Config['telegram'] {
    const apiId = internals.int(env, 'TELEGRAM_API_ID', 0, 1, 2_147_483_647);
    const apiHash = internals.str(env, 'TELEGRAM_API_HASH');
    if (Boolean(apiId) !== Boolean(apiHash)) throw new ConfigError('TELEGRAM_API_ID and TELEGRAM_API_HASH must be set together');
    const dc = internals.hostPort(env, 'TELEGRAM_DC');
    const serverKeysFile = internals.file(env, 'TELEGRAM_SERVER_KEYS');
    const botApiUrl = internals.baseUrl(env, 'TELEGRAM_BOT_API_URL') ?? 'https://api.telegram.org';
    const connectConcurrency = internals.int(env, 'TELEGRAM_CONNECT_CONCURRENCY', 0, 1, 1000);
    return { ...(apiId && { apiId }), ...(apiHash && { apiHash }), ...(dc && { dc }), ...(serverKeysFile && { serverKeysFile }), botApiUrl, ...(connectConcurrency && { connectConcurrency }) };
  },
  meta(env: Env): Config['meta'] {
    const graphUrl = internals.baseUrl(env, 'META_GRAPH_URL') ?? 'https://graph.facebook.com';
    const graphVersion = internals.str(env, 'META_GRAPH_VERSION') ?? 'v23.0';
    if (!/^v\d+\.\d+$/.test(graphVersion)) throw new ConfigError(`META_GRAPH_VERSION must look like v23.0, got "${graphVersion}"`);
    const appSecret = internals.str(env, 'META_APP_SECRET');
    const verifyToken = internals.str(env, 'META_VERIFY_TOKEN');
    const appId = internals.str(env, 'META_APP_ID');
    if (appId && !/^\w{1,64}$/.test(appId)) throw new ConfigError('META_APP_ID must be the app id of the Meta app (digits)');
    return { graphUrl, graphVersion, ...(appId && { appId }), ...(appSecret && { appSecret }), ...(verifyToken && { verifyToken }) };
  },
  // graph.instagram.com / graph.threads.net; the authorize hosts (www.instagram.com and api.instagram.com,
  // threads.net) unless one OAuth base is given (the emulator serves both on one).
  userPlatform(env: Env, prefix: 'INSTAGRAM' | 'THREADS', api: string): { apiUrl: string; oauthUrl?: string } {
    const oauthUrl = internals.baseUrl(env, `${prefix}_OAUTH_URL`);
    return { apiUrl: internals.baseUrl(env, `${prefix}_API_URL`) ?? api, ...(oauthUrl && { oauthUrl }) };
  },
  youtube(env: Env): Config['youtube'] {
    const clientId = internals.str(env, 'GOOGLE_CLIENT_ID');
    const clientSecret = internals.str(env, 'GOOGLE_CLIENT_SECRET');
    if (Boolean(clientId) !== Boolean(clientSecret)) throw new ConfigError('GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together');
    const oauthUrl = internals.baseUrl(env, 'GOOGLE_OAUTH_URL');
    return {
      ...(clientId && { clientId }), ...(clientSecret && { clientSecret }), ...(oauthUrl && { oauthUrl }),
      apiUrl: internals.baseUrl(env, 'YOUTUBE_API_URL') ?? 'https://www.googleapis.com',
      uploadUrl: internals.baseUrl(env, 'YOUTUBE_UPLOAD_URL') ?? 'https://www.googleapis.com',
      // Google's defaults (developers.google.com/youtube/v3/determine_quota_cost): 10,000 units a day per project.
      unitsPerDay: internals.int(env, 'YOUTUBE_QUOTA_UNITS_PER_DAY', 10_000, 1, 100_000_000),
      insertUnits: internals.int(env, 'YOUTUBE_INSERT_UNITS', 0, 0, 100_000),
      uploadsPerDay: internals.int(env, 'YOUTUBE_UPLOADS_PER_DAY', 100, 0, 1_000_000),
      // A multiple of 256 KiB per the resumable protocol; 8 MiB keeps one upload's memory at ~one chunk.
      chunkMb: internals.int(env, 'YOUTUBE_CHUNK_MB', 8, 1, 256),
    };
  },
  tiktok(env: Env): Config['tiktok'] {
    const clientKey = internals.str(env, 'TIKTOK_CLIENT_KEY');
    const clientSecret = internals.str(env, 'TIKTOK_CLIENT_SECRET');
    if (Boolean(clientKey) !== Boolean(clientSecret)) throw new ConfigError('TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET must be set together');
    const privacy = internals.str(env, 'TIKTOK_PRIVACY') ?? 'SELF_ONLY';
    if (!['PUBLIC_TO_EVERYONE', 'MUTUAL_FOLLOW_FRIENDS', 'FOLLOWER_OF_CREATOR', 'SELF_ONLY'].includes(privacy)) throw new ConfigError(`TIKTOK_PRIVACY must be a TikTok privacy_level, got "${privacy}"`);
    return {
      ...(clientKey && { clientKey }), ...(clientSecret && { clientSecret }),
      oauthUrl: internals.baseUrl(env, 'TIKTOK_OAUTH_URL') ?? 'https://www.tiktok.com', apiUrl: internals.baseUrl(env, 'TIKTOK_API_URL') ?? 'https://open.tiktokapis.com',
      // Media Transfer Guide: chunks of 5–64 MB.
      chunkMb: internals.int(env, 'TIKTOK_CHUNK_MB', 10, 5, 64), privacy,
    };
  },
  // Addresses or CIDR ranges of the proxies whose X-Forwarded-For names the client.
  trustedProxies(env: Env): string[] {
    const list = (internals.str(env, 'TRUSTED_PROXIES') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    for (const entry of list) {
      try {
        addressList([entry]);
      } catch {
        throw new ConfigError(`TRUSTED_PROXIES must be a comma list of addresses or CIDR ranges like 10.0.0.0/8, got "${entry}"`);
      }
    }
    return list;
  },
  egressAllowHosts(env: Env): string[] {
    const list = (internals.str(env, 'EGRESS_ALLOW_HOSTS') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    for (const entry of list) {
      const m = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry);
      if (!m || (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535))) {
        throw new ConfigError(`EGRESS_ALLOW_HOSTS must be a comma list of host or host:port, like media.internal:8443, got "${entry}"`);
      }
    }
    return list;
  },
  corsOrigins(env: Env): string[] {
    const raw = internals.str(env, 'CORS_ORIGINS');
    if (raw === undefined) return [];
    const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
    for (const o of list) {
      if (o === '*') continue;
      let ok = false;
      try {
        const u = new URL(o);
        ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o.replace(/\/$/, '');
      } catch { /* not a URL */ }
      if (!ok) throw new ConfigError(`CORS_ORIGINS must be a comma list of origins like https://app.example.com, got "${o}"`);
    }
    return list.map((o) => o.replace(/\/$/, ''));
  },
};

const secretMark = '[redacted]';

/** A copy of the config that is safe to log: secrets replaced, passwords in URLs masked. */
export function describeConfig(c: Config): Record<string, unknown> {
  const url = (u?: string) => (u === undefined ? undefined : internals.redactUrl(u));
  const mark = (v?: unknown) => (v === undefined ? undefined : secretMark);
  return {
    ...c,
    databaseUrl: url(c.databaseUrl),
    redisUrl: url(c.redisUrl),
    amqp: { ...c.amqp, url: url(c.amqp.url) },
    vault: { ...c.vault, token: mark(c.vault.token), secretId: mark(c.vault.secretId) },
    keyring: { ...c.keyring, key: mark(c.keyring.key) },
    jwt: { ...c.jwt, secret: mark(c.jwt.secret) },
    cluster: { ...c.cluster, secret: mark(c.cluster.secret) },
    telegram: { ...c.telegram, apiHash: mark(c.telegram.apiHash) },
    meta: { ...c.meta, appSecret: mark(c.meta.appSecret), verifyToken: mark(c.meta.verifyToken) },
    youtube: { ...c.youtube, clientSecret: mark(c.youtube.clientSecret) },
    tiktok: { ...c.tiktok, clientSecret: mark(c.tiktok.clientSecret) },
    otelEndpoint: url(c.otelEndpoint),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(internals.str(env, 'DATA_DIR') ?? './data');
  const databaseUrl = internals.url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const logLevel = internals.oneOf(env, 'LOG_LEVEL', logLevels, 'info');
  const logFormat = internals.str(env, 'LOG_FORMAT')?.toLowerCase();
  if (logFormat !== undefined && logFormat !== 'json' && logFormat !== 'pretty') throw new ConfigError(`LOG_FORMAT must be json or pretty, got "${logFormat}"`);
  const backoff = { baseMs: internals.int(env, 'BACKOFF_BASE_MS', 1000, 1, 3_600_000), capMs: internals.int(env, 'BACKOFF_CAP_MS', 60_000, 1, 86_400_000) };
  if (backoff.capMs < backoff.baseMs) throw new ConfigError(`BACKOFF_CAP_MS must be at least BACKOFF_BASE_MS (${backoff.baseMs}), got "${backoff.capMs}"`);
  const processLimit = internals.int(env, 'PROCESS_MEMORY_LIMIT_MB', 0, 0, 1_048_576);
  const redisUrl = internals.url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const otelEndpoint = internals.url(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  const keyringKey = internals.keyringKey(env);
  let publicUrl = internals.url(env, 'PUBLIC_URL', ['http:', 'https:']);
  while (publicUrl?.endsWith('/')) publicUrl = publicUrl.slice(0, -1);

  const config: Config = {
    port: internals.int(env, 'PORT', 8080, 1, 65535),
    host: internals.str(env, 'HOST') ?? '0.0.0.0',
    ...(databaseUrl && { databaseUrl }),
    embeddedDatabase: databaseUrl === undefined,
    dataDir,
    ...(redisUrl && { redisUrl }),
    amqp: internals.amqp(env),
    vault: internals.vault(env),
    keyring: {
      ...(keyringKey && { key: keyringKey }),
      file: resolve(internals.str(env, 'KEYRING_FILE') ?? join(dataDir, 'keyring.json')),
      rotateDays: internals.int(env, 'KEYRING_ROTATE_DAYS', 7, 1, 3650),
    },
    // 24 h: the longest token this service mints itself (the embedded start's admin token) and a common
    // IdP ceiling for access tokens; a stolen token is worth at most that long.
    jwt: { ...internals.jwt(env, databaseUrl === undefined, dataDir), maxLifetimeSec: internals.int(env, 'JWT_MAX_LIFETIME_S', 86_400, 60, 31_536_000) },
    ...(publicUrl && { publicUrl }),
    corsOrigins: internals.corsOrigins(env),
    logLevel,
    ...(logFormat && { logFormat }),
    telegram: internals.telegram(env),
    meta: internals.meta(env),
    instagram: internals.userPlatform(env, 'INSTAGRAM', 'https://graph.instagram.com'),
    threads: internals.userPlatform(env, 'THREADS', 'https://graph.threads.net'),
    youtube: internals.youtube(env),
    tiktok: internals.tiktok(env),
    shards: internals.int(env, 'SHARDS', 64, 1, 4096),
    cluster: internals.cluster(env),
    memoryBudgetMb: internals.int(env, 'MEMORY_BUDGET_MB', 50, 1, 1_048_576),
    processMemoryLimitMb: processLimit || Math.floor(getHeapStatistics().heap_size_limit / 1_048_576),
    restart: { max: internals.int(env, 'RESTART_MAX', 5, 1, 1000), windowS: internals.int(env, 'RESTART_WINDOW_S', 60, 1, 86_400) },
    breakerHalfOpenS: internals.int(env, 'BREAKER_HALF_OPEN_S', 30, 1, 86_400),
    backoff,
    rateLimit: {
      connect: internals.int(env, 'RATE_LIMIT_CONNECT', 10, 1, 1_000_000),
      send: internals.int(env, 'RATE_LIMIT_SEND', 100, 1, 1_000_000),
      status: internals.int(env, 'RATE_LIMIT_STATUS', 1000, 1, 1_000_000),
      manage: internals.int(env, 'RATE_LIMIT_MANAGE', 60, 1, 1_000_000),
      perAddress: internals.int(env, 'RATE_LIMIT_IP', 6000, 0, 100_000_000),
      trustedProxies: internals.trustedProxies(env),
    },
    listener: {
      requestTimeoutMs: internals.int(env, 'REQUEST_TIMEOUT_MS', 30_000, 1000, 3_600_000),
      maxConnections: internals.int(env, 'MAX_CONNECTIONS', 10_000, 0, 10_000_000),
      // 1000 ms: three times the longest turn measured at 10,000 accounts (310 ms, the graceful stop), so
      // start-up and GC stalls never shed; a loop that far behind has spent the 1 s accept→sent goal already.
      overloadLagMs: internals.int(env, 'OVERLOAD_LAG_MS', 1000, 0, 60_000),
    },
    retentionDays: internals.int(env, 'RETENTION_DAYS', 30, 1, 36_500),
    consentRequired: internals.bool(env, 'CONSENT_REQUIRED', false),
    quotas: {
      connectionsPerOwner: internals.int(env, 'QUOTA_CONNECTIONS_PER_OWNER', quotaDefaults.connectionsPerOwner, 1, 1_000_000),
      chatsPerConnection: internals.int(env, 'QUOTA_CHATS_PER_CONNECTION', quotaDefaults.chatsPerConnection, 1, 1_000_000),
      queuedMessagesPerOwner: internals.int(env, 'QUOTA_QUEUED_MESSAGES_PER_OWNER', quotaDefaults.queuedMessagesPerOwner, 1, 100_000_000),
      auditRowsPerOwner: internals.int(env, 'AUDIT_MAX_ROWS_PER_OWNER', quotaDefaults.auditRowsPerOwner, 1000, 1_000_000_000),
    },
    messageQueueTtlHours: internals.int(env, 'MESSAGE_QUEUE_TTL_HOURS', defaultQueueTtlHours, 1, 8760),
    eventRetentionHours: internals.int(env, 'EVENT_RETENTION_HOURS', 72, 1, 8760),
    messageStatusEvents: internals.oneOf(env, 'MESSAGE_STATUS_EVENTS', statusEventModes, 'all'),
    pace: {
      chatPerS: internals.int(env, 'PACE_CHAT_PER_S', 1, 1, 1000),
      groupPerMin: internals.int(env, 'PACE_GROUP_PER_MIN', 20, 1, 60_000),
      botPerS: internals.int(env, 'PACE_BOT_PER_S', 30, 1, 1000),
    },
    ...(otelEndpoint && { otelEndpoint }),
    shutdownTimeoutMs: internals.int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    media: {
      // 50 MB: the Bot API's upload limit, the largest file every Telegram connection takes.
      maxBytes: internals.int(env, 'UPLOAD_MAX_MB', 50, 1, 2000) * 1024 * 1024,
      retentionHours: internals.int(env, 'UPLOAD_RETENTION_HOURS', 24, 1, 8760),
      // 10 min: 50 MB at 85 KB/s, a slow mobile uplink.
      uploadTimeoutMs: internals.int(env, 'UPLOAD_TIMEOUT_MS', 600_000, 1000, 3_600_000),
      egressAllowHosts: internals.egressAllowHosts(env),
    },
  };
  // JSON.stringify(config) and console.log(config) both go through the redacted copy.
  Object.defineProperty(config, 'toJSON', { value: () => describeConfig(config), enumerable: false });
  Object.defineProperty(config, inspect.custom, { value: () => describeConfig(config), enumerable: false });
  return config;
}
