import { readFileSync } from 'node:fs';
import type { Server } from '@hapi/hapi';
import type postgres from 'postgres';
import { eventsPlugin } from './api/events.plugin.ts';
import { messagesPlugin } from './api/messages.plugin.ts';
import { registerInTurns } from './api/server.ts';
import type { Config } from './config.ts';
import type { Delivery } from './delivery/delivery.ts';
import { startEventsPublisher } from './delivery/events-publisher.ts';
import type { Logger } from 'winston';
import type { Supervisor } from './supervisor/supervisor.ts';

// Plugins that need the delivery pipeline: the messages routes, the live-events WebSocket, and the
// `integration.events` exchange (only with RabbitMQ). Returns what must be stopped on shutdown.
export async function extraPlugins(
  server: Server,
  deps: { sql: postgres.Sql; connections: Supervisor; delivery: Delivery; config: Config; logger: Logger },
): Promise<() => Promise<void>> {
  await registerInTurns(server, [
    { plugin: messagesPlugin, options: { sql: deps.sql, connections: deps.connections, delivery: deps.delivery } },
    { plugin: eventsPlugin, options: { logger: deps.logger } },
  ]);
  const { amqp } = deps.config;
  if (!amqp.url) return async () => undefined;
  const events = startEventsPublisher({
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
