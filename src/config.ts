// Every setting comes from the environment and is checked once, at start-up: a bad value stops the
// daemon with one line naming the variable, instead of failing later inside some adapter.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { join, resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';

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
  jwt: { secret?: string; secretFile?: string; jwksUrl?: string; issuer?: string; audience?: string };
  corsOrigins: string[];
  logLevel: LogLevel;
  telegram: {
    apiId?: number; apiHash?: string; dc?: { host: string; port: number }; serverKeysFile?: string; botApiUrl: string;
    /** account connects in flight at once (TELEGRAM_CONNECT_CONCURRENCY); unset = the platform's default, 16 */
    connectConcurrency?: number;
  };
  shards: number;
  memoryBudgetMb: number;
  /** resolved: PROCESS_MEMORY_LIMIT_MB, or the V8 heap limit when that is 0 */
  processMemoryLimitMb: number;
  restart: { max: number; windowS: number };
  breakerHalfOpenS: number;
  backoff: { baseMs: number; capMs: number };
  rateLimit: { connect: number; send: number; status: number };
  retentionDays: number;
  pace: { chatPerS: number; groupPerMin: number; botPerS: number };
  otelEndpoint?: string;
  shutdownTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

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
  jwt(env: Env, embedded: boolean, dataDir: string): Config['jwt'] {
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
    if (existsSync(secretFile)) {
      const secret = readFileSync(secretFile, 'utf8').trim();
      if (secret.length < minJwtSecret) throw new ConfigError(`JWT_SECRET kept in ${secretFile} must be at least ${minJwtSecret} characters, got ${secret.length}; delete the file to generate a new one`);
      return { secret, secretFile };
    }
    try {
      mkdirSync(dataDir, { recursive: true });
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
    const botApiUrl = (internals.url(env, 'TELEGRAM_BOT_API_URL', ['http:', 'https:']) ?? 'https://api.telegram.org').replace(/\/+$/, '');
    const connectConcurrency = internals.int(env, 'TELEGRAM_CONNECT_CONCURRENCY', 0, 1, 1000);
    return { ...(apiId && { apiId }), ...(apiHash && { apiHash }), ...(dc && { dc }), ...(serverKeysFile && { serverKeysFile }), botApiUrl, ...(connectConcurrency && { connectConcurrency }) };
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
    telegram: { ...c.telegram, apiHash: mark(c.telegram.apiHash) },
    otelEndpoint: url(c.otelEndpoint),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(internals.str(env, 'DATA_DIR') ?? './data');
  const databaseUrl = internals.url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const logLevel = (internals.str(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!logLevels.includes(logLevel as LogLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${logLevels.join(', ')}, got "${logLevel}"`);
  const backoff = { baseMs: internals.int(env, 'BACKOFF_BASE_MS', 1000, 1, 3_600_000), capMs: internals.int(env, 'BACKOFF_CAP_MS', 60_000, 1, 86_400_000) };
  if (backoff.capMs < backoff.baseMs) throw new ConfigError(`BACKOFF_CAP_MS must be at least BACKOFF_BASE_MS (${backoff.baseMs}), got "${backoff.capMs}"`);
  const processLimit = internals.int(env, 'PROCESS_MEMORY_LIMIT_MB', 0, 0, 1_048_576);
  const redisUrl = internals.url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const otelEndpoint = internals.url(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  const keyringKey = internals.keyringKey(env);

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
    jwt: internals.jwt(env, databaseUrl === undefined, dataDir),
    corsOrigins: internals.corsOrigins(env),
    logLevel: logLevel as LogLevel,
    telegram: internals.telegram(env),
    shards: internals.int(env, 'SHARDS', 16, 1, 4096),
    memoryBudgetMb: internals.int(env, 'MEMORY_BUDGET_MB', 50, 1, 1_048_576),
    processMemoryLimitMb: processLimit || Math.floor(getHeapStatistics().heap_size_limit / 1_048_576),
    restart: { max: internals.int(env, 'RESTART_MAX', 5, 1, 1000), windowS: internals.int(env, 'RESTART_WINDOW_S', 60, 1, 86_400) },
    breakerHalfOpenS: internals.int(env, 'BREAKER_HALF_OPEN_S', 30, 1, 86_400),
    backoff,
    rateLimit: {
      connect: internals.int(env, 'RATE_LIMIT_CONNECT', 10, 1, 1_000_000),
      send: internals.int(env, 'RATE_LIMIT_SEND', 100, 1, 1_000_000),
      status: internals.int(env, 'RATE_LIMIT_STATUS', 1000, 1, 1_000_000),
    },
    retentionDays: internals.int(env, 'RETENTION_DAYS', 30, 1, 36_500),
    pace: {
      chatPerS: internals.int(env, 'PACE_CHAT_PER_S', 1, 1, 1000),
      groupPerMin: internals.int(env, 'PACE_GROUP_PER_MIN', 20, 1, 60_000),
      botPerS: internals.int(env, 'PACE_BOT_PER_S', 30, 1, 1000),
    },
    ...(otelEndpoint && { otelEndpoint }),
    shutdownTimeoutMs: internals.int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
  };
  // JSON.stringify(config) and console.log(config) both go through the redacted copy.
  Object.defineProperty(config, 'toJSON', { value: () => describeConfig(config), enumerable: false });
  Object.defineProperty(config, inspect.custom, { value: () => describeConfig(config), enumerable: false });
  return config;
}
