// A supervisor wired to real parts for end-to-end tests: a fresh Postgres database, the emulator
// over real sockets (GramJS MTProto + Bot API HTTP) and a local keyring. Each call makes its own.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import winston from 'winston';
import { openKeyring, type Keyring } from '../../src/crypto/keyring.ts';
import { Connections } from '../../src/connections/service.ts';
import type { PlatformAdapter } from '../../src/platforms/adapter.ts';
import { Platforms } from '../../src/platforms/registry.ts';
import { telegramAdapter } from '../../src/platforms/telegram/index.ts';
import { declarePlatformKinds } from '../../src/store/connections.ts';
import { Supervisor, type SupervisorOptions } from '../../src/supervisor/supervisor.ts';
import { startEmulator, type Emulator, type EmulatorOptions } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface Stack {
  emu: Emulator;
  db: TestDatabase;
  keyring: Keyring;
  platforms: Platforms;
  supervisor: Supervisor;
  /** The connection service over this supervisor (create, login steps, chats). */
  connections: Connections;
  /** Stops this supervisor (persisting every actor) and starts a new one on the same database. */
  restart(): Promise<Supervisor>;
  close(): Promise<void>;
}

export const quietLogger = () => winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });

export interface StackOptions {
  emulator?: EmulatorOptions;
  supervisor?: Partial<SupervisorOptions>;
  account?: { heartbeatMs?: number; entityCacheMax?: number; callTimeoutMs?: number; connectTimeoutMs?: number; loginStateSaveMs?: number };
  /** Options of the connection service (e.g. its quota). */
  connections?: { maxConnectionsPerOwner?: number; logger?: winston.Logger };
  /** Changes the Telegram adapter before it is registered (e.g. wraps a kind's driver). */
  adapter?: (telegram: PlatformAdapter) => PlatformAdapter;
  emu?: Emulator;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const emu = opts.emu ?? (await startEmulator(opts.emulator));
  const db = await createTestDatabase();
  const keyring = await openKeyring({ keyringKey: randomBytes(32) });
  const tweak = opts.adapter ?? ((a: PlatformAdapter) => a);
  const platforms = new Platforms([tweak(telegramAdapter({
    account: {
      apiId: 1, apiHash: 'emulator', dc: emu.mtproto, serverKeysPem: readFileSync(emu.serverKeys, 'utf8'),
      callTimeoutMs: opts.account?.callTimeoutMs ?? 5000, connectTimeoutMs: opts.account?.connectTimeoutMs ?? 5000,
      ...(opts.account?.heartbeatMs ? { heartbeatMs: opts.account.heartbeatMs } : {}),
      ...(opts.account?.entityCacheMax ? { entityCacheMax: opts.account.entityCacheMax } : {}),
      ...(opts.account?.loginStateSaveMs ? { loginStateSaveMs: opts.account.loginStateSaveMs } : {}),
    },
    bot: { botApiUrl: emu.botApi, timeoutMs: 5000, pollTimeoutS: 1 },
  }))]);
  await declarePlatformKinds(db.sql, platforms.pairs());
  const make = () => new Supervisor({
    sql: db.sql, keyring, platforms, logger: quietLogger(), shards: 4,
    memoryBudgetBytes: 50 * 1024 * 1024, restart: { max: 5, windowS: 60 }, breakerHalfOpenS: 30,
    backoff: { baseMs: 100, capMs: 2000 }, persistDebounceMs: 10, stepTimeoutMs: 8000,
    ...opts.supervisor,
  });
  const service = (supervisor: Supervisor) => new Connections({ sql: db.sql, keyring, platforms, supervisor, logger: quietLogger(), shards: 4, ...opts.connections });
  const first = make();
  const stack: Stack = {
    emu, db, keyring, platforms,
    supervisor: first,
    connections: service(first),
    async restart() {
      await stack.supervisor.stop();
      stack.supervisor = make();
      stack.connections = service(stack.supervisor);
      await stack.supervisor.start();
      return stack.supervisor;
    },
    async close() {
      await stack.supervisor.stop().catch(() => undefined);
      if (!opts.emu) await emu.stop();
      await keyring.close();
      await db.drop();
    },
  };
  await stack.supervisor.start();
  return stack;
}

let phones = 0;
/**
 * A fresh phone number per call (the emulator keys users by phone): a UK mobile-length number, so the
 * API takes it as a possible one, unique per process for a million calls.
 */
export const newPhone = () => `+447${String(process.pid % 1000).padStart(3, '0')}${String(phones++ % 1_000_000).padStart(6, '0')}`;

export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
