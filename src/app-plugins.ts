import { readFileSync } from 'node:fs';
import type { Server } from '@hapi/hapi';
import type { Redis } from 'ioredis';
import type postgres from 'postgres';
import { memoryTickets, redisTickets } from './api/event-tickets.ts';
import { eventsPlugin } from './api/events.plugin.ts';
import { messagesPlugin } from './api/messages.plugin.ts';
import { registerInTurns } from './api/server.ts';
import type { Config } from './config.ts';
import type { Delivery } from './delivery/delivery.ts';
import { startEventsPublisher } from './delivery/events-publisher.ts';
import type { Logger } from 'winston';
import type { ConnectionService } from './connections/types.ts';
import type { Egress } from './net/egress.ts';
import type { EventFeed } from './events/feed.ts';
import type { SendCapabilities } from './platforms/adapter.ts';

// Plugins that need the delivery pipeline: the messages routes, the live-events WebSocket, and the
// `integration.events` exchange (only with RabbitMQ). Returns what must be stopped on shutdown.
export async function extraPlugins(
  server: Server,
  deps: {
    sql: postgres.Sql; connections: ConnectionService; delivery: Delivery; config: Config; logger: Logger; redis?: Redis;
    capabilities: (platform: string, kind: string) => SendCapabilities | undefined; egress: Egress;
    /** committed events for the WebSocket (replay, then live) */
    feed?: EventFeed;
  },
): Promise<() => Promise<void>> {
  await registerInTurns(server, [
    {
      plugin: messagesPlugin,
      options: { sql: deps.sql, connections: deps.connections, delivery: deps.delivery, quotas: deps.config.quotas, capabilities: deps.capabilities, egress: deps.egress,
        statusEvents: deps.config.messageStatusEvents },
    },
    // Tickets in Redis when there is one: a ticket issued by one replica opens the socket on another.
    {
      plugin: eventsPlugin,
      options: { logger: deps.logger, tickets: deps.redis ? redisTickets(deps.redis) : memoryTickets(), sql: deps.sql, ...(deps.feed && { feed: deps.feed }) },
    },
  ]);
  const { amqp } = deps.config;
  if (!amqp.url) return async () => undefined;
  const events = startEventsPublisher({
    sql: deps.sql,
    amqpUrl: amqp.url,
    exchange: 'integration.events',
    logger: deps.logger,
    ...(amqp.caFile || amqp.certFile ? {
      amqpOptions: {
        tls: {
          ...(amqp.caFile ? { ca: readFileSync(amqp.caFile) } : {}),
          ...(amqp.certFile ? { cert: readFileSync(amqp.certFile) } : {}),
          ...(amqp.keyFile ? { key: readFileSync(amqp.keyFile) } : {}),
          ...(amqp.servername ? { servername: amqp.servername } : {}),
        },
      },
    } : {}),
  });
  return () => events.stop();
}
