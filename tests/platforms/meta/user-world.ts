// Instagram or Threads through the core's OAuth plumbing against its emulator: a supervisor and
// connection service on a fresh database (oauth-stack.ts), a media server the emulator downloads
// posts' files from (as Meta downloads from the service's signed PUBLIC_URL links), and the steps
// a test repeats: connect through the redirect, a message, the posts the emulator holds.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { OutboundMedia, OutboundMessage, PlatformAdapter } from '../../../src/platforms/adapter.ts';
import { instagramAdapter, type InstagramOptions } from '../../../src/platforms/instagram/index.ts';
import type { ContainerDriver } from '../../../src/platforms/meta/containers.ts';
import { threadsAdapter } from '../../../src/platforms/threads/index.ts';
import { startInstagramEmulator } from '../../emulator/instagram/index.ts';
import { realClock, type EmulatorClock, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { ctl, PatternFile } from '../../emulator/support/platform-client.ts';
import { startThreadsEmulator } from '../../emulator/threads/index.ts';
import { until } from '../../helpers/stack.ts';
import { apps, consent, startOAuthStack, type OAuthStack } from '../oauth-stack.ts';

export type MetaPlatform = 'instagram' | 'threads';

/** Serves each message's file at a URL of its own, read from `media.read()` as the signed route would. */
export class MediaServer {
  readonly #files = new Map<string, OutboundMedia>();
  readonly #server: Server;
  url = '';

  constructor() {
    this.#server = createServer((req, res) => {
      const m = this.#files.get((req.url ?? '').slice(3));
      if (!m) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': m.contentType, 'content-length': m.size });
      void (async () => {
        for await (const chunk of m.read()) if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
        res.end();
      })();
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** `item`: one of a carousel's files, at a URL of its own. */
  link = (msg: OutboundMessage, item?: number): string | undefined => {
    const file = item === undefined ? msg.media : msg.items?.[item];
    if (!file) return undefined;
    const key = item === undefined ? msg.id : `${msg.id}-${item}`;
    this.#files.set(key, file);
    return `${this.url}/m/${key}`;
  };

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

/** Every log line as written, for a test that looks for a token in them. */
export class LogLines {
  lines: string[] = [];
  readonly logger = winston.createLogger({
    level: 'debug',
    format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: new Writable({ write: (c, _e, done) => { this.lines.push(String(c)); done(); } }) })],
  });
}

export interface MetaWorld {
  platform: MetaPlatform;
  emu: PlatformEmulator;
  clock: EmulatorClock;
  stack: OAuthStack;
  media: MediaServer;
  logs: LogLines;
  close(): Promise<void>;
}

export interface MetaWorldOptions {
  adapter?: Partial<InstagramOptions>;
  postLimit?: number;
  keyringKey?: Buffer;
}

export function metaAdapter(platform: MetaPlatform, urls: Record<string, string>, o: Partial<InstagramOptions>): PlatformAdapter {
  const base = {
    appId: apps.meta.appId, appSecret: apps.meta.appSecret, apiUrl: urls.api!, oauthUrl: urls.oauth!,
    watchMs: 50, probeMs: 250, pollMs: 20, pollMaxMs: 5000, timeoutMs: 5000, ...o,
  };
  return platform === 'instagram' ? instagramAdapter(base) : threadsAdapter(base);
}

export async function startMetaWorld(platform: MetaPlatform, o: MetaWorldOptions = {}): Promise<MetaWorld> {
  const clock = realClock();
  const emuOpts = { clock, apps, processingMs: { image: 0, video: 300 }, ...(o.postLimit ? { postLimit: o.postLimit } : {}) };
  const emu = platform === 'instagram' ? await startInstagramEmulator(emuOpts) : await startThreadsEmulator(emuOpts);
  const media = await new MediaServer().start();
  const logs = new LogLines();
  const logger = logs.logger;
  const adapter = metaAdapter(platform, emu.urls, { mediaLink: media.link, now: () => clock.now(), ...o.adapter });
  const stack = await startOAuthStack(adapter, { logger, ...(o.keyringKey ? { keyringKey: o.keyringKey } : {}) });
  return {
    platform, emu, clock, stack, media, logs,
    async close() {
      await stack.close();
      await media.stop();
      await emu.stop();
    },
  };
}

/** A connected account: a new account approves in the emulator, the browser follows the redirect back. */
export async function connectAccount(w: MetaWorld, owner: string, username: string): Promise<{ id: string; accountId: string }> {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  const c = await w.stack.connections.create(owner, { platform: w.platform, kind: 'account' });
  const to = new URL(await w.stack.connections.authorizationCallback(w.platform, await consent(c.login!.authorizeUrl as string, w.platform)));
  if (to.searchParams.get('status') !== 'active') throw new Error(`not active after the callback: ${to.search}`);
  await until(async () => (await w.stack.connections.get(owner, c.id)).status === 'active', 'active');
  return { id: c.id, accountId: json.accountId };
}

export const driverOf = (w: MetaWorld, owner: string, id: string) => w.stack.supervisor.live(owner, id)!.driver as ContainerDriver;

export const message = (connectionId: string, text: string, media?: OutboundMedia | OutboundMedia[]): OutboundMessage => ({
  id: randomUUID(), owner: 'alice', connectionId, chat: 'me', text, silent: false, priority: 'normal', attempts: 1, createdAt: new Date(),
  ...(Array.isArray(media) ? { items: media } : media ? { media } : {}),
});

export function photoOf(size: number): OutboundMedia {
  const file = new PatternFile(size);
  return { type: 'photo', filename: 'p.jpg', contentType: 'image/jpeg', size, sha256: file.sha256(), read: async function* () { yield* file.slices(0, size, 64 * 1024); } };
}

export function clipOf(size: number): OutboundMedia {
  const file = new PatternFile(size);
  return { type: 'video', filename: 'c.mp4', contentType: 'video/mp4', size, sha256: file.sha256(), read: async function* () { yield* file.slices(0, size, 64 * 1024); } };
}

export const postsOf = async (w: MetaWorld, accountId: string): Promise<any[]> => (await ctl(w.emu, 'GET', '/posts')).json.filter((p: any) => p.accountId === accountId);
