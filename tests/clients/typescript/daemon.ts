// The daemon (startApp on a fresh real Postgres database) wired to the Telegram emulator, for the
// client's and the CLI's end-to-end tests: what a user of the client talks to.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type App } from '../../../src/app.ts';
import { mintToken } from '../../../src/auth/token.ts';
import { loadConfig, type Config } from '../../../src/config.ts';
import { startEmulator, type Emulator } from '../../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

export interface Daemon {
  emu: Emulator; db: TestDatabase; app: App; config: Config; secret: string; dataDir: string;
  token(sub: string, scopes?: string[]): string;
  /** A bot and a channel where it may post, both fresh. */
  botWithChannel(): { token: string; username: string; chatId: number };
  restart(): Promise<void>;
  stop(): Promise<void>;
}

let n = 0;

export async function startDaemon(env: Record<string, string> = {}): Promise<Daemon> {
  const emu = await startEmulator();
  const db = await createTestDatabase();
  const secret = randomBytes(32).toString('base64url');
  const dataDir = mkdtempSync(join(tmpdir(), 'client-e2e-'));
  const config = {
    ...loadConfig({
      // Emulator, client and daemon share this event loop: its lag measures the harness, not the service.
      OVERLOAD_LAG_MS: '0',
      DATABASE_URL: db.url, DATA_DIR: dataDir, JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: 'error',
      TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'client-e2e', TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys,
      TELEGRAM_BOT_API_URL: emu.botApi, RATE_LIMIT_CONNECT: '1000', BACKOFF_BASE_MS: '100', BACKOFF_CAP_MS: '1000', ...env,
    }),
    port: 0,
  };
  const d: Daemon = {
    emu, db, config, secret, dataDir, app: await startApp(config),
    token: (sub, scopes = []) => mintToken({ secret, sub, scopes }),
    botWithChannel() {
      const stamp = `${process.pid % 10_000}${n++}${Date.now() % 10_000}`;
      const bot = emu.createBot({ username: `cli${stamp}_bot` });
      const username = `chan${stamp}`;
      const { chatId } = emu.createChat({ type: 'channel', title: `Channel ${stamp}`, username, members: [{ id: bot.botId, role: 'admin', rights: { postMessages: true } }] });
      return { token: bot.token, username, chatId };
    },
    async restart() {
      const port = Number(d.app.server.info.port);
      await d.app.stop();
      // Same port: a client that reconnects finds the daemon where it was.
      d.app = await startApp({ ...config, port });
    },
    async stop() {
      await d.app.stop();
      await emu.stop();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return d;
}
