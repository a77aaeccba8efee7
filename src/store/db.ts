// The one `postgres` pool of the process, with migrations applied at open. postgres.js reconnects
// lazily on the next query after a connection dies, so the pool survives a Postgres restart; ping()
// has its own deadline so readiness turns 503 within ~2 s instead of waiting out a dead socket.
import postgres from 'postgres';
import type { Logger } from 'winston';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { logger } from '../observability/logger.ts';
import { startEmbedded, type EmbeddedServer } from './embedded.ts';
import { MigrationError, migrate } from './migrate.ts';

export interface Database {
  sql: postgres.Sql;
  embedded: boolean;
  /** round-trip time in ms; rejects with AppError DEPENDENCY_UNAVAILABLE when down or slower than the deadline */
  ping(): Promise<number>;
  /** waits up to timeoutMs (default 5000) for in-flight queries, then cuts them; safe to call twice */
  close(opts?: { timeoutMs?: number }): Promise<void>;
  /**
   * A small pool of its own, beside the shared one, for work that must not queue behind it (lease
   * renewals); the shared pool itself in embedded mode (one session). Ended by close().
   */
  ownPool(max: number): postgres.Sql;
}

export interface OpenOptions {
  /** pool size against a real server; embedded mode is always 1 */
  max?: number;
  pingTimeoutMs?: number;
  migrationsDir?: string;
}

// 10 connections serve the API, the outbox relay and the supervisor's writes with room to spare;
// Postgres's default max_connections is 100, so several replicas fit.
const defaultMax = 10;
const defaultPingTimeoutMs = 2000;

export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir'>,
  log: Logger = logger,
  opts: OpenOptions = {},
): Promise<Database> {
  const pingTimeoutMs = opts.pingTimeoutMs ?? defaultPingTimeoutMs;
  const common = {
    // Seconds. Bounds a reconnect attempt against a host that drops packets instead of refusing.
    connect_timeout: Math.max(1, Math.ceil(pingTimeoutMs / 1000)),
    onnotice: () => undefined, // "relation already exists, skipping" and the like are not news
    connection: { application_name: 'integration-service' },
  };
  let embedded: EmbeddedServer | undefined;
  let sql: postgres.Sql;
  if (config.databaseUrl === undefined) {
    embedded = await startEmbedded(config.dataDir, log);
    // PGlite is a single session: with two client connections a transaction on one could interleave
    // with statements from the other (LIBRARIES.md), so the whole process shares one connection.
    sql = postgres({ ...common, path: embedded.socket, user: 'postgres', database: 'postgres', max: 1 });
  } else {
    sql = postgres(config.databaseUrl, { ...common, max: opts.max ?? defaultMax });
  }

  try {
    const { applied, current } = await migrate(sql, { log, ...(opts.migrationsDir && { dir: opts.migrationsDir }) });
    log.info('database ready', { embedded: Boolean(embedded), schemaVersion: current, applied: applied.length });
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => undefined);
    await embedded?.close().catch(() => undefined);
    if (err instanceof MigrationError) throw err;
    // Connection trouble at start-up (refused, timeout, unknown database, bad credentials): one code
    // the daemon maps to "dependency unavailable"; the message names host:port, never the password.
    throw new AppError('DEPENDENCY_UNAVAILABLE', `could not open the database: ${(err as Error).message}`, { cause: err });
  }

  let closing: Promise<void> | undefined;
  const own: postgres.Sql[] = [];
  return {
    sql,
    embedded: Boolean(embedded),
    ping: () => ping(sql, pingTimeoutMs),
    ownPool: (max) => {
      if (config.databaseUrl === undefined) return sql;
      const p = postgres(config.databaseUrl, { ...common, max });
      own.push(p);
      return p;
    },
    close: ({ timeoutMs = 5000 } = {}) =>
      (closing ??= (async () => {
        // postgres.js takes seconds. Note: after an outage a pool with max > 1 may use the whole grace
        // even when idle (measured 5.0 s against 2 ms before the outage), so pass the shutdown budget.
        await Promise.all(own.map((p) => p.end({ timeout: timeoutMs / 1000 })));
        await sql.end({ timeout: timeoutMs / 1000 });
        await embedded?.close();
      })()),
  };
}

async function ping(sql: postgres.Sql, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const query = sql`select 1`;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([query, deadline]);
    return Math.round((performance.now() - started) * 10) / 10;
  } catch (err) {
    // A query stuck on a half-dead socket would otherwise hold its connection until TCP gives up.
    if (!(err as { code?: string }).code) query.cancel();
    query.catch(() => undefined);
    // postgres.js names host:port in connection errors, never credentials
    // (e.g. "connect ECONNREFUSED 127.0.0.1:5432", "write CONNECT_TIMEOUT 10.0.0.5:5432").
    throw new AppError('DEPENDENCY_UNAVAILABLE', `database ping failed: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
