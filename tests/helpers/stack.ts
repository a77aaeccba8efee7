// A supervisor wired to real parts for end-to-end tests: a fresh Postgres database, the emulator
// over real sockets (GramJS MTProto + Bot API HTTP) and a local keyring. Each call makes its own.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import winston from 'winston';
import { openKeyring, type Keyring } from '../../src/crypto/keyring.ts';
import { telegramPlatform, type Platform } from '../../src/platforms/telegram/index.ts';
import { Supervisor, type SupervisorOptions } from '../../src/supervisor/supervisor.ts';
import { startEmulator, type Emulator, type EmulatorOptions } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface Stack {
  emu: Emulator;
  db: TestDatabase;
  keyring: Keyring;
  platform: Platform;
  supervisor: Supervisor;
  /** Stops this supervisor (persisting every actor) and starts a new one on the same database. */
  restart(): Promise<Supervisor>;
  close(): Promise<void>;
}

export const quietLogger = () => winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });

export interface StackOptions {
  emulator?: EmulatorOptions;
  supervisor?: Partial<SupervisorOptions>;
  account?: { heartbeatMs?: number; entityCacheMax?: number; callTimeoutMs?: number; connectTimeoutMs?: number };
  emu?: Emulator;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const emu = opts.emu ?? (await startEmulator(opts.emulator));
  const db = await createTestDatabase();
  const keyring = await openKeyring({ keyringKey: randomBytes(32) });
  const platform = telegramPlatform({
    account: {
      apiId: 1, apiHash: 'emulator', dc: emu.mtproto, serverKeysPem: readFileSync(emu.serverKeys, 'utf8'),
      callTimeoutMs: opts.account?.callTimeoutMs ?? 5000, connectTimeoutMs: opts.account?.connectTimeoutMs ?? 5000,
      ...(opts.account?.heartbeatMs ? { heartbeatMs: opts.account.heartbeatMs } : {}),
      ...(opts.account?.entityCacheMax ? { entityCacheMax: opts.account.entityCacheMax } : {}),
    },
    bot: { botApiUrl: emu.botApi, timeoutMs: 5000, pollTimeoutS: 1 },
  });
  const make = () => new Supervisor({
    sql: db.sql, keyring, platform, logger: quietLogger(), shards: 4,
    memoryBudgetBytes: 50 * 1024 * 1024, restart: { max: 5, windowS: 60 }, breakerHalfOpenS: 30,
    backoff: { baseMs: 100, capMs: 2000 }, persistDebounceMs: 10, stepTimeoutMs: 8000,
    ...opts.supervisor,
  });
  const stack: Stack = {
    emu, db, keyring, platform,
    supervisor: make(),
    async restart() {
      await stack.supervisor.stop();
      stack.supervisor = make();
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
/** A fresh phone number per call: the emulator keys users by phone. */
export const newPhone = () => `+4477009${String(process.pid % 1000).padStart(3, '0')}${String(phones++).padStart(2, '0')}`;

export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
