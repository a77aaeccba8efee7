// A supervisor and connection service over one OAuth platform adapter and its emulator, on a fresh
// Postgres database with a local keyring: what the daemon wires in src/app.ts, minus HTTP and delivery.
import { randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import type winston from 'winston';
import { openKeyring, type Keyring } from '../../src/crypto/keyring.ts';
import { Connections } from '../../src/connections/service.ts';
import type { OutboundMedia, PlatformAdapter } from '../../src/platforms/adapter.ts';
import { Platforms } from '../../src/platforms/registry.ts';
import { declarePlatformKinds } from '../../src/store/connections.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import { browse, PatternFile } from '../emulator/support/platform-client.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { quietLogger } from '../helpers/stack.ts';

export const PUBLIC_URL = 'http://127.0.0.1:9';

export const apps = {
  meta: { appId: 'm', appSecret: 'ms', verifyToken: 'mv' },
  google: { clientId: 'svc-client.apps.googleusercontent.com', clientSecret: 'google-secret' },
  tiktok: { clientKey: 'tkclientkey', clientSecret: 'tiktok-secret' },
};

export interface OAuthStack {
  db: TestDatabase;
  keyring: Keyring;
  platforms: Platforms;
  supervisor: Supervisor;
  connections: Connections;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** The supervisor the stack runs (and a child process of a crash test, over the same database). */
export function oauthSupervisor(sql: postgres.Sql, keyring: Keyring, platforms: Platforms, logger: winston.Logger = quietLogger()): Supervisor {
  return new Supervisor({
    sql, keyring, platforms, logger, shards: 4,
    memoryBudgetBytes: 50 * 1024 * 1024, restart: { max: 5, windowS: 60 }, breakerHalfOpenS: 30,
    backoff: { baseMs: 100, capMs: 2000 }, persistDebounceMs: 10, stepTimeoutMs: 8000,
  });
}

/**
 * `keyringKey`: the key, for a test that hands the same database to a child process; `logger`: where the
 * supervisor and the connection service log (a test that reads the lines).
 */
export async function startOAuthStack(adapter: PlatformAdapter, opts: { keyringKey?: Buffer; logger?: winston.Logger } = {}): Promise<OAuthStack> {
  const db = await createTestDatabase();
  const keyring = await openKeyring({ keyringKey: opts.keyringKey ?? randomBytes(32) });
  const platforms = new Platforms([adapter]);
  await declarePlatformKinds(db.sql, platforms.pairs());
  const logger = opts.logger ?? quietLogger();
  const make = () => oauthSupervisor(db.sql, keyring, platforms, logger);
  const service = (supervisor: Supervisor) => new Connections({ sql: db.sql, keyring, platforms, supervisor, logger, shards: 4, publicUrl: PUBLIC_URL });
  const s: OAuthStack = {
    db, keyring, platforms, supervisor: make(), connections: undefined as unknown as Connections,
    async restart() {
      await s.supervisor.stop();
      s.supervisor = make();
      s.connections = service(s.supervisor);
      await s.supervisor.start();
    },
    async close() {
      await s.supervisor.stop().catch(() => undefined);
      await keyring.close();
      await db.drop();
    },
  };
  s.connections = service(s.supervisor);
  await s.supervisor.start();
  return s;
}

/** The browser: opens the authorize URL, follows the provider's redirect to our callback, returns its query. */
export async function consent(authorizeUrl: string, platform: string): Promise<Record<string, string>> {
  const back = await browse(authorizeUrl, `${PUBLIC_URL}/v1/oauth/${platform}/callback`);
  if (!back.location) throw new Error(`the provider did not redirect back (${back.status}): ${back.body?.slice(0, 200)}`);
  return Object.fromEntries(back.location.searchParams);
}

/** A video file of `size` bytes, read a MiB at a time as delivery hands it over. */
export function videoOf(size: number, contentType = 'video/mp4'): OutboundMedia & { file: PatternFile; reads: number } {
  const file = new PatternFile(size);
  const media = {
    type: 'video' as const, filename: 'clip.mp4', contentType, size, sha256: file.sha256(), file, reads: 0,
    async* read() {
      media.reads++;
      yield* file.slices(0, size, 1024 * 1024);
    },
  };
  return media;
}
