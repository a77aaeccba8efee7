// Shared by tests/events: a started server with the events plugin over a real database and feed,
// and a ws client that records frames.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type postgres from 'postgres';
import { WebSocket } from 'ws';
import { eventsPlugin, type EventsPluginOptions } from '../../src/api/events.plugin.ts';
import { mintToken } from '../../src/auth/token.ts';
import { EventFeed } from '../../src/events/feed.ts';
import { secret, shellServer } from '../api/shell-server.ts';

export interface Frame { id: string; pos: number; type: string; at: string; occurredAt: string; connectionId?: string; data: any }

export async function eventsServer(sql: postgres.Sql, opts: EventsPluginOptions = {}) {
  const shell = await shellServer();
  const feed = new EventFeed(sql, { logger: shell.logger, pollMs: 50 });
  await feed.start();
  await shell.server.register({ plugin: eventsPlugin, options: { logger: shell.logger, sql, feed, ...opts } });
  await shell.server.start();
  const { port } = shell.server.listener.address() as AddressInfo;
  return {
    ...shell, feed, base: `ws://127.0.0.1:${port}`,
    async stop() { await shell.server.stop(); await feed.stop(); },
  };
}

export const token = (sub: string) => mintToken({ secret, sub });

/** Opens a socket; resolves with it and its frames once open, or with the refusal's status and body. */
export async function openEvents(url: string, sub: string): Promise<{ ws: WebSocket; frames: Frame[] } | { status: number; body: any }> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token(sub)}` } });
  const frames: Frame[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    ws.once('error', reject);
  });
}

export async function connectedEvents(url: string, sub: string) {
  const r = await openEvents(url, sub);
  if (!('ws' in r)) throw new Error(`refused with ${r.status}: ${JSON.stringify(r.body)}`);
  return r;
}

/** Waits until frames has n entries (frames arrive in order on one socket). */
export async function frameCount(ws: WebSocket, frames: unknown[], n: number): Promise<void> {
  while (frames.length < n) await once(ws, 'message');
}

export async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close();
  await closed;
}
