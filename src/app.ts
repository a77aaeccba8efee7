import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Server } from '@hapi/hapi';
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { openKeyring, type Keyring } from './crypto/keyring.ts';
import { purposeKey } from './crypto/purpose-keys.ts';
import { rewrapAll } from './crypto/rewrap.ts';
import { startDelivery, type Delivery } from './delivery/delivery.ts';
import { adminPlugin } from './api/admin.plugin.ts';
import { auditPlugin } from './api/audit.plugin.ts';
import { chatsPlugin } from './api/chats.plugin.ts';
import { connectionsPlugin } from './api/connections.plugin.ts';
import { forwardPlugin } from './api/forward.plugin.ts';
import { oauthPlugin } from './api/oauth.plugin.ts';
import { consentsPlugin } from './api/consents.plugin.ts';
import { consolePlugin } from './api/console.plugin.ts';
import { mePlugin } from './api/me.plugin.ts';
import { platformWebhooksPlugin } from './api/platform-webhooks.plugin.ts';
import { uploadDeadline, uploadsPlugin } from './api/uploads.plugin.ts';
import { mediaPlugin } from './api/media.plugin.ts';
import { MediaLinks } from './media/links.ts';
import { webhooksPlugin } from './api/webhooks.plugin.ts';
import { createServer, registerInTurns } from './api/server.ts';
import { startRetention, type RetentionRunner } from './jobs/retention.ts';
import { EventFeed } from './events/feed.ts';
import { Egress } from './net/egress.ts';
import { logFormatFor, logger as rootLogger } from './observability/logger.ts';
import { LogSubjects } from './observability/subjects.ts';
import { Connections } from './connections/service.ts';
import { platformsFromConfig, type Platforms } from './platforms/index.ts';
import { declarePlatformKinds } from './store/connections.ts';
import { openDatabase, type Database } from './store/db.ts';
import { shardOwner } from './store/leases.ts';
import { deleteSalt, saltOf } from './store/log-salts.ts';
import type { AppError } from './errors.ts';
import { Supervisor } from './supervisor/supervisor.ts';
import { Cluster } from './cluster/cluster.ts';
import { forwardingKey } from './cluster/forward.ts';
import { extraPlugins } from './app-plugins.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { startWebhookFeeder } from './webhooks/feeder.ts';

// Process wiring: every port gets its real adapter when configured and its embedded stand-in when
// not (ARCHITECTURE.md: embedded defaults). Same code above the ports either way.

export interface App {
  server: Server;
  url: string;
  db: Database;
  supervisor: Supervisor;
  connections: Connections;
  platforms: Platforms;
  delivery: Delivery;
  keyring: Keyring;
  cluster: Cluster;
  /** Graceful: stop accepting, drain, persist every actor, close pools — within the budget. */
  stop(timeoutMs?: number): Promise<void>;
}

const MB = 1024 * 1024;
// Keys rotate every KEYRING_ROTATE_DAYS; checking hourly keeps rotation within an hour of due.
const keyCheckMs = 3_600_000;

export async function startApp(config: Config): Promise<App> {
  const log = rootLogger;
  log.level = config.logLevel;
  if (config.logFormat) log.format = logFormatFor(config.logFormat);
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
      sql: db.sql,
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

    // Events are stored with the changes they report (src/store); the feed reads them back for the WebSocket.
    const feed = new EventFeed(db.sql, { logger: log });
    await feed.start();
    closers.push(() => feed.stop());

    // Platforms that download a post's file (Instagram, Threads) get a signed link to it (src/media/links.ts).
    const mediaLinks = new MediaLinks(db.sql, keyring, config.publicUrl ?? `http://${config.host}:${config.port}`);
    const platforms = platformsFromConfig(config, { mediaLink: mediaLinks.link });
    await declarePlatformKinds(db.sql, platforms.pairs());
    closers.push(() => platforms.stop());

    const amqpTls = config.amqp.caFile || config.amqp.certFile ? {
      tls: {
        ...(config.amqp.caFile ? { ca: readFileSync(config.amqp.caFile) } : {}),
        ...(config.amqp.certFile ? { cert: readFileSync(config.amqp.certFile) } : {}),
        ...(config.amqp.keyFile ? { key: readFileSync(config.amqp.keyFile) } : {}),
        ...(config.amqp.servername ? { servername: config.amqp.servername } : {}),
      },
    } : undefined;

    // Messages parked while a connection was down are due the moment it is active again (once
    // delivery runs: connections restored at boot come before it, and its first poll finds theirs).
    let resumeParked = (_connectionId: string): void => undefined;
    // Shard leases (src/cluster): taken before any actor runs; given back last, once actors and
    // consumers have stopped (closers run in reverse). A lone node takes every shard at once.
    const cluster = new Cluster({
      // Lease rounds on two connections of their own: on the shared pool a renewal queued behind a
      // takeover's work (100 actors starting, the dead node's backlog of messages) missed the 12 s
      // deadline on a loaded host and both survivors fenced themselves in turn (docs/performance.md).
      sql: db.ownPool(2), nodeId: config.cluster.nodeId, shards: config.shards, ttlMs: config.cluster.leaseTtlMs,
      deadlineMs: config.cluster.leaseDeadlineMs, renewMs: config.cluster.leaseRenewMs, takeoverGraceMs: config.cluster.takeoverGraceMs, logger: log,
      // The embedded database serves one connection: LISTEN would hold it (and it runs one node anyway).
      listen: !config.embeddedDatabase,
    });
    await cluster.start();
    closers.push(() => cluster.stop());
    const supervisor = new Supervisor({
      sql: db.sql, keyring, platforms, logger: log, shards: config.shards, cluster,
      memoryBudgetBytes: config.memoryBudgetMb * MB, processMemoryLimitBytes: config.processMemoryLimitMb * MB,
      restart: config.restart, breakerHalfOpenS: config.breakerHalfOpenS, backoff: config.backoff,
      onActive: (id) => resumeParked(id),
    });
    await supervisor.start();
    closers.push(() => supervisor.stop());
    const connections = new Connections({
      sql: db.sql, keyring, platforms, supervisor, logger: log, shards: config.shards, maxConnectionsPerOwner: config.quotas.connectionsPerOwner,
      publicUrl: config.publicUrl ?? `http://${config.host}:${config.port}`,
      announce: (id) => cluster.announceConnection(id),
    });

    // Outgoing requests to addresses callers name (media URLs): the SSRF guard (src/net/egress.ts).
    const egress = new Egress({ allowHosts: config.media.egressAllowHosts });
    closers.push(() => egress.close());
    const capabilities = (platform: string, kind: string) => platforms.sendCapabilities(platform, kind);
    const delivery = startDelivery({
      sql: db.sql, shards: config.shards, sender: supervisor, logger: log, capabilities,
      media: { egress, limits: { maxBytes: config.media.maxBytes, retentionHours: config.media.retentionHours, deadlineMs: config.media.uploadTimeoutMs } },
      ...(config.amqp.url ? { amqpUrl: config.amqp.url } : {}),
      ...(amqpTls ? { amqpOptions: amqpTls } : {}),
      processor: { statusEvents: config.messageStatusEvents },
      cluster,
    });
    closers.push(() => delivery.stop());
    // Consumers stop before actors: no send starts on a connection that is about to close.
    cluster.subscribe({
      gained: (shards) => {
        void supervisor.startShards(shards);
        delivery.startShards(shards);
      },
      lost: async (shards) => {
        await delivery.stopShards(shards);
        await supervisor.stopShards(shards);
      },
    });
    cluster.onConnection((id) => void supervisor.startConnection(id).catch((err: Error) => log.warn('announced connection not started', { connectionId: id, error: err.message })));
    resumeParked = (id) => void delivery.resumeConnection(id).catch((err) => log.warn('resume failed', { connectionId: id, error: (err as Error).message }));

    // Log lines name callers by keyed hash only (docs/security.md, "Logs and erasure").
    const subjects = new LogSubjects(await purposeKey(db.sql, keyring, 'log-subjects'), {
      saltOf: (sub) => saltOf(db.sql, sub),
      deleteSalt: (sub) => deleteSalt(db.sql, sub),
    });
    const server = await createServer({
      subjects,
      port: config.port,
      host: config.host,
      auth: config.jwt,
      corsOrigins: config.corsOrigins,
      logger: log,
      rateLimit: { ...config.rateLimit, ...(redis ? { redis } : {}) },
      listener: { ...config.listener, longRequest: uploadDeadline(config.media.uploadTimeoutMs) },
      loadShed: { thresholdMs: config.listener.overloadLagMs },
      ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
      checks: {
        postgres: async () => { await db.ping(); },
        ...(redis ? { redis: async () => { await redis.ping(); } } : {}),
        ...(config.amqp.url ? {
          rabbitmq: async () => { if (!delivery.stats().brokerConnected) throw new Error('not connected to RabbitMQ'); },
        } : {}),
        ...(config.vault.addr ? { vault: () => keyring.ping() } : {}),
        supervisor: async () => { if (supervisor.stopped) throw new Error('supervisor stopped'); },
        leases: async () => { if (!cluster.healthy()) throw new Error('shard leases not renewed within their deadline'); },
      },
    });
    // Signs calls between nodes (src/cluster/forward.ts): owner-only calls and the cluster-wide actor list.
    const forwardKey = forwardingKey({
      ...(config.cluster.secret !== undefined ? { clusterSecret: config.cluster.secret } : {}),
      ...(config.keyring.key ? { keyringKey: config.keyring.key } : {}),
      ...(config.jwt.secret !== undefined ? { jwtSecret: config.jwt.secret } : {}),
    });
    const deps = {
      sql: db.sql, connections, platforms, quotas: config.quotas, cluster: { node: cluster.node, ttlMs: config.cluster.leaseTtlMs },
      ...(forwardKey ? { forwardKey } : {}),
    };
    await registerInTurns(server, [
      { plugin: connectionsPlugin, options: deps },
      { plugin: oauthPlugin, options: deps },
      { plugin: chatsPlugin, options: deps },
      { plugin: auditPlugin, options: { sql: db.sql } },
      { plugin: mePlugin, options: deps },
      { plugin: consentsPlugin, options: { sql: db.sql, connections, consentRequired: config.consentRequired } },
      { plugin: adminPlugin, options: deps },
      { plugin: uploadsPlugin, options: { sql: db.sql, media: config.media } },
      { plugin: mediaPlugin, options: { sql: db.sql, links: mediaLinks } },
      { plugin: webhooksPlugin, options: { sql: db.sql, keyring, egress } },
      { plugin: consolePlugin, options: {} },
      {
        plugin: platformWebhooksPlugin,
        options: {
          sql: db.sql, platforms, logger: log,
          // A connection running in this process moves to error at once (one that is not running shows the
          // revocation at its next connect: the platform refuses its tokens).
          onRevoked: (c: { owner: string; id: string }, error: AppError) => {
            const rt = supervisor.live(c.owner, c.id);
            if (rt) supervisor.platformError(rt, error);
          },
        },
      },
    ]);
    // Calls that need a connection's owner go to it when another node holds the shard (src/api/forward.plugin.ts).
    if (forwardKey) {
      await server.register({
        plugin: forwardPlugin,
        options: { key: forwardKey, node: cluster.node, owner: (shard: number) => shardOwner(db.sql, shard, config.cluster.leaseTtlMs), logger: log },
      });
    }
    closers.push(await extraPlugins(server, { sql: db.sql, connections, delivery, config, logger: log, capabilities, egress, feed, ...(redis ? { redis } : {}) }));

    // Outgoing webhooks (src/webhooks): deliveries are rows, so a crash repeats at most the rows it held (64 per endpoint).
    const webhooks = new WebhookDispatcher({ sql: db.sql, keyring, egress, logger: log });
    webhooks.start();
    closers.push(() => webhooks.stop());
    // Stored events become deliveries (src/webhooks/feeder.ts: its own cursor over the events table).
    const feeder = startWebhookFeeder({ sql: db.sql, logger: log });
    closers.push(() => feeder.stop());

    const retention: RetentionRunner = startRetention({
      sql: db.sql, days: config.retentionDays, queueTtlHours: config.messageQueueTtlHours, auditMaxRowsPerOwner: config.quotas.auditRowsPerOwner, uploads: true,
      eventRetentionHours: config.eventRetentionHours, webhookDeliveries: true, logger: log,
    });
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
    // Peers forward owner-only calls here: NODE_URL, else this host's name (listening on every
    // interface) or the address it listens on.
    await cluster.setUrl(config.cluster.nodeUrl ?? (config.host === '0.0.0.0' ? `http://${hostname()}:${server.info.port}` : url));
    let stopping: Promise<void> | undefined;
    return {
      server, url, db, supervisor, connections, platforms, delivery, keyring, cluster,
      stop(timeoutMs = config.shutdownTimeoutMs) {
        // Budget: HTTP drain gets a third, then actors persist and pools close in what is left.
        stopping ??= (async () => {
          cluster.drain();
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
