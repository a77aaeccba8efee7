import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, describeConfig, loadConfig } from '../src/config.ts';

const secret = 'j'.repeat(40);
const server = { DATABASE_URL: 'postgres://svc:db-pass@db.internal:5432/app', JWT_SECRET: secret };
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'cfg-'));
  dirs.push(d);
  return d;
};

// Asserts the exact one-line message, so a test cannot pass on some unrelated failure.
const fails = (env: Record<string, string>, message: string | RegExp) => {
  try {
    loadConfig(env);
  } catch (err) {
    assert.instance(err, ConfigError);
    const msg = (err as Error).message;
    assert.not.match(msg, /\n/);
    if (typeof message === 'string') assert.is(msg, message);
    else assert.match(msg, message);
    return msg;
  }
  assert.unreachable(`expected ConfigError: ${String(message)}`);
  return '';
};

test('defaults', () => {
  const c = loadConfig({ ...server });
  assert.is(c.port, 8080);
  assert.is(c.host, '0.0.0.0');
  assert.is(c.embeddedDatabase, false);
  assert.is(c.dataDir, join(process.cwd(), 'data'));
  assert.is(c.keyring.file, join(process.cwd(), 'data', 'keyring.json'));
  assert.is(c.keyring.rotateDays, 7);
  assert.is(c.keyring.key, undefined);
  assert.equal(c.vault, { transitMount: 'transit', transitKey: 'integration-service' });
  assert.equal(c.amqp, {});
  assert.is(c.redisUrl, undefined);
  assert.equal(c.corsOrigins, []);
  assert.is(c.logLevel, 'info');
  assert.equal(c.telegram, { botApiUrl: 'https://api.telegram.org' });
  assert.is(c.shards, 64);
  assert.equal({ ...c.cluster, nodeId: undefined }, { nodeId: undefined, leaseTtlMs: 20_000, leaseDeadlineMs: 12_000, leaseRenewMs: 3000, disconnectDelayS: 20, pingMs: 6666, takeoverGraceMs: 13_000 });
  assert.ok(c.cluster.nodeId.endsWith(`-${process.pid}`));
  assert.is(c.memoryBudgetMb, 50);
  assert.is(c.processMemoryLimitMb, Math.floor(getHeapStatistics().heap_size_limit / 1_048_576));
  assert.equal(c.restart, { max: 5, windowS: 60 });
  assert.is(c.breakerHalfOpenS, 30);
  assert.equal(c.backoff, { baseMs: 1000, capMs: 60_000 });
  assert.equal(c.rateLimit, { connect: 10, send: 100, status: 1000, manage: 60, perAddress: 6000, trustedProxies: [] });
  assert.equal(c.listener, { requestTimeoutMs: 30_000, maxConnections: 10_000, overloadLagMs: 1000 });
  assert.is(c.publicUrl, undefined);
  assert.is(c.retentionDays, 30);
  assert.equal(c.quotas, { connectionsPerOwner: 100, chatsPerConnection: 500, queuedMessagesPerOwner: 10_000, auditRowsPerOwner: 250_000 });
  assert.is(c.messageQueueTtlHours, 72);
  assert.equal(c.pace, { chatPerS: 1, groupPerMin: 20, botPerS: 30 });
  assert.is(c.otelEndpoint, undefined);
  assert.is(c.shutdownTimeoutMs, 10_000);
  assert.equal(c.jwt, { secret, maxLifetimeSec: 86_400 });
});

test('values are parsed and typed', () => {
  const ca = join(tempDir(), 'ca.pem');
  writeFileSync(ca, 'x');
  const c = loadConfig({
    ...server, PORT: '9090', HOST: '127.0.0.1', REDIS_URL: 'rediss://r:6380', AMQP_URL: 'amqps://u:p@mq:5671',
    AMQP_CA_FILE: ca, TELEGRAM_API_ID: '12345', TELEGRAM_API_HASH: 'abc', TELEGRAM_DC: '127.0.0.1:4430',
    TELEGRAM_BOT_API_URL: 'http://127.0.0.1:8081/', CORS_ORIGINS: 'https://a.example, http://localhost:3000',
    LOG_LEVEL: 'DEBUG', PROCESS_MEMORY_LIMIT_MB: '512', SHARDS: '64', PACE_BOT_PER_S: '25', EMPTY: '', RETENTION_DAYS: '',
  });
  assert.is(c.port, 9090);
  assert.is(c.amqp.url, 'amqps://u:p@mq:5671');
  assert.is(c.amqp.caFile, ca);
  assert.equal(c.telegram, { apiId: 12345, apiHash: 'abc', dc: { host: '127.0.0.1', port: 4430 }, botApiUrl: 'http://127.0.0.1:8081' });
  assert.equal(c.corsOrigins, ['https://a.example', 'http://localhost:3000']);
  assert.is(c.logLevel, 'debug');
  assert.is(c.processMemoryLimitMb, 512);
  assert.is(c.shards, 64);
  assert.is(c.pace.botPerS, 25);
  assert.is(c.retentionDays, 30, 'an empty variable counts as unset');
});

test('integers: range and syntax', () => {
  fails({ ...server, PORT: 'abc' }, 'PORT must be an integer 1..65535, got "abc"');
  fails({ ...server, PORT: '0' }, 'PORT must be an integer 1..65535, got "0"');
  fails({ ...server, PORT: '65536' }, 'PORT must be an integer 1..65535, got "65536"');
  fails({ ...server, PORT: '80.5' }, 'PORT must be an integer 1..65535, got "80.5"');
  fails({ ...server, SHARDS: '0' }, /^SHARDS must be an integer 1\.\.4096, got "0"$/);
  fails({ ...server, MEMORY_BUDGET_MB: '-5' }, /^MEMORY_BUDGET_MB must be an integer 1\.\./);
  fails({ ...server, TELEGRAM_API_ID: '12x', TELEGRAM_API_HASH: 'h' }, /^TELEGRAM_API_ID must be an integer/);
  fails({ ...server, BACKOFF_BASE_MS: '5000', BACKOFF_CAP_MS: '1000' }, 'BACKOFF_CAP_MS must be at least BACKOFF_BASE_MS (5000), got "1000"');
});

test('quotas and the queue TTL: parsed, and refused out of range', () => {
  const c = loadConfig({
    ...server, QUOTA_CONNECTIONS_PER_OWNER: '5', QUOTA_CHATS_PER_CONNECTION: '50', QUOTA_QUEUED_MESSAGES_PER_OWNER: '200',
    AUDIT_MAX_ROWS_PER_OWNER: '5000', MESSAGE_QUEUE_TTL_HOURS: '6',
  });
  assert.equal(c.quotas, { connectionsPerOwner: 5, chatsPerConnection: 50, queuedMessagesPerOwner: 200, auditRowsPerOwner: 5000 });
  assert.is(c.messageQueueTtlHours, 6);
  fails({ ...server, QUOTA_CONNECTIONS_PER_OWNER: '0' }, 'QUOTA_CONNECTIONS_PER_OWNER must be an integer 1..1000000, got "0"');
  fails({ ...server, QUOTA_QUEUED_MESSAGES_PER_OWNER: '1e4' }, /^QUOTA_QUEUED_MESSAGES_PER_OWNER must be an integer/);
  // An audit trail of a few hundred rows would be pruned to uselessness: 1000 is the floor.
  fails({ ...server, AUDIT_MAX_ROWS_PER_OWNER: '999' }, 'AUDIT_MAX_ROWS_PER_OWNER must be an integer 1000..1000000000, got "999"');
  fails({ ...server, MESSAGE_QUEUE_TTL_HOURS: '0' }, 'MESSAGE_QUEUE_TTL_HOURS must be an integer 1..8760, got "0"');
});

test('CONSENT_REQUIRED: off by default, true/false/1/0 in any case, anything else refused', () => {
  assert.is(loadConfig(server).consentRequired, false);
  for (const [raw, want] of [['true', true], ['TRUE', true], ['1', true], ['false', false], ['0', false], ['', false]] as const) {
    assert.is(loadConfig({ ...server, CONSENT_REQUIRED: raw }).consentRequired, want, raw);
  }
  fails({ ...server, CONSENT_REQUIRED: 'yes' }, 'CONSENT_REQUIRED must be true or false, got "yes"');
});

test('MESSAGE_STATUS_EVENTS: all by default, outcomes in any case, anything else refused', () => {
  assert.is(loadConfig(server).messageStatusEvents, 'all');
  assert.is(loadConfig({ ...server, MESSAGE_STATUS_EVENTS: 'Outcomes' }).messageStatusEvents, 'outcomes');
  assert.is(loadConfig({ ...server, MESSAGE_STATUS_EVENTS: '' }).messageStatusEvents, 'all', 'empty counts as unset');
  fails({ ...server, MESSAGE_STATUS_EVENTS: 'final' }, 'MESSAGE_STATUS_EVENTS must be one of all, outcomes, got "final"');
});

test('URLs must parse and use the right scheme', () => {
  fails({ ...server, DATABASE_URL: 'mysql://x/y' }, 'DATABASE_URL must use postgres: or postgresql:, got "mysql:"');
  fails({ ...server, REDIS_URL: 'http://r:6379' }, 'REDIS_URL must use redis: or rediss:, got "http:"');
  fails({ ...server, AMQP_URL: 'redis://q' }, 'AMQP_URL must use amqp: or amqps:, got "redis:"');
  fails({ ...server, VAULT_ADDR: 'vault:8200', VAULT_TOKEN: 't' }, 'VAULT_ADDR must use http: or https:, got "vault:"');
  fails({ ...server, OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://c:4317' }, /^OTEL_EXPORTER_OTLP_ENDPOINT must use http: or https:/);
  fails({ ...server, TELEGRAM_BOT_API_URL: 'not a url' }, 'TELEGRAM_BOT_API_URL must be a URL (http: or https://…), got "not a url"');
  fails({ ...server, CORS_ORIGINS: 'https://ok.example,ftp://x' }, 'CORS_ORIGINS must be a comma list of origins like https://app.example.com, got "ftp://x"');
  fails({ ...server, CORS_ORIGINS: 'https://a.example/path' }, /got "https:\/\/a\.example\/path"$/);
  // postgresql: is the other scheme libpq accepts
  assert.is(loadConfig({ ...server, DATABASE_URL: 'postgresql://h/db' }).databaseUrl, 'postgresql://h/db');
});

test('other formats: host:port, log level, pairs that go together', () => {
  fails({ ...server, TELEGRAM_DC: '127.0.0.1' }, 'TELEGRAM_DC must be host:port with port 1..65535, got "127.0.0.1"');
  fails({ ...server, TELEGRAM_DC: 'dc:99999' }, /^TELEGRAM_DC must be host:port/);
  assert.equal(loadConfig({ ...server, TELEGRAM_DC: '[::1]:443' }).telegram.dc, { host: '::1', port: 443 });
  fails({ ...server, LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of error, warn, info/);
  fails({ ...server, TELEGRAM_API_ID: '1' }, 'TELEGRAM_API_ID and TELEGRAM_API_HASH must be set together');
  fails({ ...server, VAULT_ROLE_ID: 'r' }, 'VAULT_ROLE_ID and VAULT_SECRET_ID must be set together (AppRole login)');
  fails({ ...server, VAULT_ADDR: 'https://v:8200' }, /^VAULT_TOKEN or VAULT_ROLE_ID \+ VAULT_SECRET_ID is required/);
  const v = loadConfig({ ...server, VAULT_ADDR: 'https://v:8200', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's', VAULT_TRANSIT_MOUNT: 'kms' }).vault;
  assert.equal(v, { addr: 'https://v:8200', roleId: 'r', secretId: 's', transitMount: 'kms', transitKey: 'integration-service' });
});

test('edge settings: JWT lifetime, public URL, per-address limit, trusted proxies, request deadline, connection cap', () => {
  const c = loadConfig({
    ...server, JWT_MAX_LIFETIME_S: '604800', PUBLIC_URL: 'https://api.example.com/', RATE_LIMIT_MANAGE: '30', RATE_LIMIT_IP: '0',
    TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.1,fd00::/8', REQUEST_TIMEOUT_MS: '5000', MAX_CONNECTIONS: '0', OVERLOAD_LAG_MS: '0',
  });
  assert.is(c.jwt.maxLifetimeSec, 604_800);
  assert.is(c.publicUrl, 'https://api.example.com');
  assert.equal(c.rateLimit, { connect: 10, send: 100, status: 1000, manage: 30, perAddress: 0, trustedProxies: ['10.0.0.0/8', '192.0.2.1', 'fd00::/8'] });
  assert.equal(c.listener, { requestTimeoutMs: 5000, maxConnections: 0, overloadLagMs: 0 });
  fails({ ...server, OVERLOAD_LAG_MS: '-1' }, /OVERLOAD_LAG_MS must be an integer 0\.\.60000/);
  fails({ ...server, TRUSTED_PROXIES: '10.0.0.0/33' }, 'TRUSTED_PROXIES must be a comma list of addresses or CIDR ranges like 10.0.0.0/8, got "10.0.0.0/33"');
  fails({ ...server, TRUSTED_PROXIES: 'proxy.internal' }, /TRUSTED_PROXIES must be/);
  // Read as IPv4 (as the limiter compares addresses), a /104 is past 32 bits: refused here, not a RangeError at start.
  fails({ ...server, TRUSTED_PROXIES: '::ffff:10.0.0.0/104' }, /TRUSTED_PROXIES must be/);
  fails({ ...server, PUBLIC_URL: 'ftp://x' }, /PUBLIC_URL must use http: or https:/);
  fails({ ...server, JWT_MAX_LIFETIME_S: '0' }, /JWT_MAX_LIFETIME_S must be an integer 60\.\.31536000/);
});

test('files must exist', () => {
  const missing = join(tempDir(), 'nope.pem');
  fails({ ...server, TELEGRAM_SERVER_KEYS: missing }, `TELEGRAM_SERVER_KEYS must name an existing file, got "${missing}"`);
  fails({ ...server, AMQP_CA_FILE: missing }, /^AMQP_CA_FILE must name an existing file/);
  const dir = tempDir();
  fails({ ...server, TELEGRAM_SERVER_KEYS: dir }, /^TELEGRAM_SERVER_KEYS must name an existing file/);
  const cert = join(dir, 'c.pem');
  writeFileSync(cert, 'x');
  fails({ ...server, AMQP_CERT_FILE: cert }, 'AMQP_CERT_FILE and AMQP_KEY_FILE must be set together (client certificate)');
  assert.is(loadConfig({ ...server, TELEGRAM_SERVER_KEYS: cert }).telegram.serverKeysFile, cert);
});

test('KEYRING_KEY is base64 of exactly 32 bytes and never echoed', () => {
  const key = Buffer.alloc(32, 7);
  assert.ok(loadConfig({ ...server, KEYRING_KEY: key.toString('base64') }).keyring.key?.equals(key));
  const short = Buffer.alloc(16, 7).toString('base64');
  const msg = fails({ ...server, KEYRING_KEY: short }, 'KEYRING_KEY must be base64 of exactly 32 bytes, got 16 bytes');
  assert.not.ok(msg.includes(short));
  fails({ ...server, KEYRING_KEY: '!!!not-base64!!!' }, 'KEYRING_KEY must be base64 of exactly 32 bytes, got a value that is not base64');
  fails({ ...server, KEYRING_KEY: Buffer.alloc(33).toString('base64') }, /got 33 bytes$/);
});

test('JWT_SECRET: required with a real database, checked for length', () => {
  fails({ DATABASE_URL: server.DATABASE_URL }, /^JWT_SECRET is required \(at least 32 characters\) unless JWT_JWKS_URL is set/);
  const msg = fails({ ...server, JWT_SECRET: 'short-secret' }, 'JWT_SECRET must be at least 32 characters, got 12');
  assert.not.ok(msg.includes('short-secret'));
  const c = loadConfig({ DATABASE_URL: server.DATABASE_URL, JWT_JWKS_URL: 'https://idp/.well-known/jwks.json', JWT_ISSUER: 'idp', JWT_AUDIENCE: 'svc' });
  assert.equal(c.jwt, { jwksUrl: 'https://idp/.well-known/jwks.json', issuer: 'idp', audience: 'svc', maxLifetimeSec: 86_400 });
});

test('embedded mode generates a JWT secret once, mode 0600, and reuses it', () => {
  const dataDir = join(tempDir(), 'nested', 'data');
  const first = loadConfig({ DATA_DIR: dataDir });
  assert.is(first.embeddedDatabase, true);
  assert.is(first.databaseUrl, undefined);
  const file = join(dataDir, 'jwt-secret');
  assert.is(first.jwt.secretFile, file);
  assert.ok(first.jwt.secret && first.jwt.secret.length >= 32);
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.is(readFileSync(file, 'utf8').trim(), first.jwt.secret);
  assert.is(loadConfig({ DATA_DIR: dataDir }).jwt.secret, first.jwt.secret);
  assert.is(loadConfig({ DATA_DIR: tempDir() }).jwt.secret === first.jwt.secret, false);
  writeFileSync(file, 'tiny');
  fails({ DATA_DIR: dataDir }, /^JWT_SECRET kept in .*jwt-secret must be at least 32 characters, got 4/);
  // An explicit secret wins and nothing is written.
  const other = tempDir();
  assert.is(loadConfig({ DATA_DIR: other, JWT_SECRET: secret }).jwt.secretFile, undefined);
});

test('embedded mode creates DATA_DIR 0700 and refuses a DATA_DIR or JWT secret file open to others', () => {
  const parent = tempDir();
  const dataDir = join(parent, 'data');
  loadConfig({ DATA_DIR: dataDir });
  assert.is(statSync(dataDir).mode & 0o777, 0o700, 'created owner-only');
  const file = join(dataDir, 'jwt-secret');

  // Any local user could mint an admin token with a readable secret (issue 12, finding 10).
  chmodSync(file, 0o644);
  fails({ DATA_DIR: dataDir }, `JWT secret file ${file} has mode 0644: it is readable by group/others, refusing to use it; run chmod 600 ${file}`);
  chmodSync(file, 0o620);
  fails({ DATA_DIR: dataDir }, /has mode 0620: it is accessible by group\/others, refusing to use it; run chmod 600 /);
  chmodSync(file, 0o600);
  assert.ok(loadConfig({ DATA_DIR: dataDir }).jwt.secret);

  // A data dir made by an older version (0755, its files 0666): refused with the command that fixes it all.
  chmodSync(dataDir, 0o755);
  fails({ DATA_DIR: dataDir }, `DATA_DIR ${dataDir} has mode 0755: it is readable by group/others, refusing to use it; run chmod -R go-rwx ${dataDir}`);
  execFileSync('chmod', ['-R', 'go-rwx', dataDir]);
  assert.ok(loadConfig({ DATA_DIR: dataDir }).jwt.secret, 'the suggested command is enough');
  // With JWT_SECRET set nothing is written by the config; the embedded database checks DATA_DIR itself.
  chmodSync(dataDir, 0o755);
  assert.is(loadConfig({ DATA_DIR: dataDir, JWT_SECRET: secret }).jwt.secretFile, undefined);
});

test('printing the config never shows secrets or URL passwords', () => {
  const key = Buffer.alloc(32, 9).toString('base64');
  const c = loadConfig({
    ...server, VAULT_ADDR: 'https://v:8200', VAULT_TOKEN: 'hvs.vault-token-value', KEYRING_KEY: key,
    AMQP_URL: 'amqp://guest:mq-pass@127.0.0.1:5672', REDIS_URL: 'redis://:redis-pass@r:6379',
    TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'api-hash-value',
  });
  for (const text of [JSON.stringify(c), inspect(c, { depth: 5 }), JSON.stringify(describeConfig(c))]) {
    for (const leak of [secret, 'db-pass', 'hvs.vault-token-value', key, 'mq-pass', 'redis-pass', 'api-hash-value']) {
      assert.not.ok(text.includes(leak), `leaked ${leak}`);
    }
    assert.ok(text.includes('[redacted]'));
    assert.ok(text.includes('db.internal'), 'non-secret parts stay readable');
  }
  assert.is(c.jwt.secret, secret, 'the config object itself keeps the real value');
});

test('a bad URL with credentials is reported without them', () => {
  const msg = fails({ ...server, DATABASE_URL: 'postgres://u:pw-secret@h:notaport/db' }, /^DATABASE_URL must be a URL/);
  assert.not.ok(msg.includes('pw-secret'));
});

test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.run();
