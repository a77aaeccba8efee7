import { readFileSync } from 'node:fs';
import type { Server } from '@hapi/hapi';
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { openKeyring, type Keyring } from './crypto/keyring.ts';
import { rewrapAll } from './crypto/rewrap.ts';
import { startDelivery, type Delivery } from './delivery/delivery.ts';
import { bus } from './events/bus.ts';
import { adminPlugin } from './api/admin.plugin.ts';
import { auditPlugin } from './api/audit.plugin.ts';
import { chatsPlugin } from './api/chats.plugin.ts';
import { connectionsPlugin } from './api/connections.plugin.ts';
import { consolePlugin } from './api/console.plugin.ts';
import { mePlugin } from './api/me.plugin.ts';
import { createServer, registerInTurns } from './api/server.ts';
import { startRetention, type RetentionRunner } from './jobs/retention.ts';
import { logger as rootLogger } from './observability/logger.ts';
import { telegramPlatform } from './platforms/telegram/index.ts';
import { openDatabase, type Database } from './store/db.ts';
import { Supervisor } from './supervisor/supervisor.ts';
import { extraPlugins } from './app-plugins.ts';

// Process wiring: every port gets its real adapter when configured and its embedded stand-in when
// not (ARCHITECTURE.md: embedded defaults). Same code above the ports either way.

export interface App {
  server: Server;
  url: string;
  db: Database;
  supervisor: Supervisor;
  delivery: Delivery;
  keyring: Keyring;
  /** Graceful: stop accepting, drain, persist every actor, close pools — within the budget. */
  stop(timeoutMs?: number): Promise<void>;
}

const MB = 1024 * 1024;
// Keys rotate every KEYRING_ROTATE_DAYS; checking hourly keeps rotation within an hour of due.
const keyCheckMs = 3_600_000;

export async function startApp(config: Config): Promise<App> {
  const log = rootLogger;
  log.level = config.logLevel;
  const db = await openDatabase(config, log);
  const closers: (() => Promise<unknown>)[] = [() => db.close({ timeoutMs: 3000 })];
  const cleanup = async () => { for (const close of closers.reverse()) await close().catch(() => undefined); };
  try {
    const keyring = await openKeyring({
      ...(config.vault.addr ? {
        vaultAddr: config.vault.addr, vaultToken: config.vault.token, vaultRoleId: config.vault.roleId, vaultSecretId: config.vault.secretId,
        vaultTransitMount: config.vault.transitMount, vaultKeyName: config.vault.transitKey,
      } : {}),
      ...(config.keyring.key ? { keyringKey: config.keyring.key } : {}),
      keyringFile: config.keyring.file,
      rotateDays: config.keyring.rotateDays,
    });
    closers.push(() => keyring.close());

    const redis = config.redisUrl
      // No offline queue: a rate-limit call while Redis is down fails at once and the memory
      // insurance limiter answers, instead of requests piling up behind a dead socket.
      ? new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false })
      : undefined;
    if (redis) {
      redis.on('error', () => undefined); // readiness reports it; ioredis reconnects by itself
      closers.push(async () => redis.disconnect());
    }

    const platform = telegramPlatform({
      account: {
        apiId: config.telegram.apiId ?? 0,
        apiHash: config.telegram.apiHash ?? '',
        ...(config.telegram.dc ? { dc: `${config.telegram.dc.host}:${config.telegram.dc.port}` } : {}),
        ...(config.telegram.serverKeysFile ? { serverKeysPem: readFileSync(config.telegram.serverKeysFile, 'utf8') } : {}),
      },
      bot: { botApiUrl: config.telegram.botApiUrl },
      ...(config.telegram.connectConcurrency ? { maxConcurrentConnects: config.telegram.connectConcurrency } : {}),
    });

    const amqpTls = config.amqp.caFile || config.amqp.certFile ? {
      tls: {
        ...(config.amqp.caFile ? { ca: readFileSync(config.amqp.caFile) } : {}),
        ...(config.amqp.certFile ? { cert: readFileSync(config.amqp.certFile) } : {}),
        ...(config.amqp.keyFile ? { key: readFileSync(config.amqp.keyFile) } : {}),
        ...(config.amqp.servername ? { servername: config.amqp.servername } : {}),
      },
    } : undefined;

    const supervisor = new Supervisor({
      sql: db.sql, keyring, platform, logger: log, shards: config.shards,
      memoryBudgetBytes: config.memoryBudgetMb * MB, processMemoryLimitBytes: config.processMemoryLimitMb * MB,
      restart: config.restart, breakerHalfOpenS: config.breakerHalfOpenS, backoff: config.backoff,
    });
    await supervisor.start();
    closers.push(() => supervisor.stop());

    const delivery = startDelivery({
      sql: db.sql, shards: config.shards, sender: supervisor, logger: log,
      pacing: { chatPerSecond: config.pace.chatPerS, groupPerMinute: config.pace.groupPerMin, botPerSecond: config.pace.botPerS },
      ...(config.amqp.url ? { amqpUrl: config.amqp.url } : {}),
      ...(amqpTls ? { amqpOptions: amqpTls } : {}),
    });
    closers.push(() => delivery.stop());
    // Messages parked while a connection was down are due the moment it is active again.
    const unsubscribe = bus.subscribe((event) => {
      if (event.type !== 'connection.status') return;
      const c = event.data as { id: string; status: string };
      if (c.status === 'active') void delivery.resumeConnection(c.id).catch((err) => log.warn('resume failed', { connectionId: c.id, error: (err as Error).message }));
    });
    closers.push(async () => unsubscribe());

    const server = await createServer({
      port: config.port,
      host: config.host,
      auth: config.jwt,
      corsOrigins: config.corsOrigins,
      logger: log,
      rateLimit: { ...config.rateLimit, ...(redis ? { redis } : {}) },
      checks: {
        postgres: async () => { await db.ping(); },
        ...(redis ? { redis: async () => { await redis.ping(); } } : {}),
        ...(config.amqp.url ? {
          rabbitmq: async () => { if (!delivery.stats().brokerConnected) throw new Error('not connected to RabbitMQ'); },
        } : {}),
        ...(config.vault.addr ? { vault: () => keyring.ping() } : {}),
        supervisor: async () => { if (supervisor.stopped) throw new Error('supervisor stopped'); },
      },
    });
    const deps = { sql: db.sql, connections: supervisor };
    await registerInTurns(server, [
      { plugin: connectionsPlugin, options: deps },
      { plugin: chatsPlugin, options: deps },
      { plugin: auditPlugin, options: { sql: db.sql } },
      { plugin: mePlugin, options: deps },
      { plugin: adminPlugin, options: deps },
      { plugin: consolePlugin, options: {} },
    ]);
    closers.push(await extraPlugins(server, { sql: db.sql, connections: supervisor, delivery, config, logger: log }));

    const retention: RetentionRunner = startRetention({ sql: db.sql, days: config.retentionDays, logger: log });
    closers.push(() => retention.stop());
    const keyTimer = setInterval(() => {
      void keyring.rotateIfDue().then(async (version) => {
        if (version === null) return;
        const counts = await rewrapAll(db.sql, keyring);
        log.info('keyring rotated; secrets rewrapped', { version, ...counts });
      }).catch((err) => log.error('key rotation failed', { error: (err as Error).message }));
    }, keyCheckMs);
    keyTimer.unref();
    closers.push(async () => clearInterval(keyTimer));

    await server.start();
    const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server.info.port}`;
    let stopping: Promise<void> | undefined;
    return {
      server, url, db, supervisor, delivery, keyring,
      stop(timeoutMs = config.shutdownTimeoutMs) {
        // Budget: HTTP drain gets a third, then actors persist and pools close in what is left.
        stopping ??= (async () => {
          await server.stop({ timeout: Math.floor(timeoutMs / 3) });
          await cleanup();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
