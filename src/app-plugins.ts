import type { Server } from '@hapi/hapi';
import type postgres from 'postgres';
import type { Config } from './config.ts';
import type { Delivery } from './delivery/delivery.ts';
import type { Supervisor } from './supervisor/supervisor.ts';

// Plugins that need the delivery pipeline (messages, live events, the events exchange).
export async function extraPlugins(_server: Server, _deps: { sql: postgres.Sql; connections: Supervisor; delivery: Delivery; config: Config }): Promise<void> {
}
