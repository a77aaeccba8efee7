// The whole daemon (startApp) on a fresh Postgres database against the WhatsApp Cloud API emulator
// (tests/emulator/whatsapp) over real sockets, for the WhatsApp end-to-end tests.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type App } from '../../../src/app.ts';
import { mintToken } from '../../../src/auth/token.ts';
import { loadConfig } from '../../../src/config.ts';
import { resolveApps } from '../../emulator/platforms/registry.ts';
import { realClock, type EmulatorApps, type EmulatorClock, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { startWhatsAppEmulator, type WhatsAppOptions } from '../../emulator/whatsapp/index.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { freePort } from '../../helpers/private-services.ts';
import { until as waitUntil } from '../../helpers/stack.ts';

export interface WaWorld {
  emu: PlatformEmulator; apps: EmulatorApps; clock: EmulatorClock; db: TestDatabase; app: App; secret: string;
  call(sub: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  control(method: string, path: string, body?: unknown, query?: Record<string, string>): Promise<any>;
  /** A new business number in the emulator with its system-user token. */
  number(extra?: Record<string, unknown>): Promise<{ phoneNumberId: string; wabaId: string; accessToken: string; displayPhoneNumber: string }>;
  stop(): Promise<void>;
}

export async function startWaWorld(opts: { env?: Record<string, string>; emulator?: Partial<WhatsAppOptions> } = {}): Promise<WaWorld> {
  const apps = resolveApps({});
  const clock = realClock();
  const emu = await startWhatsAppEmulator({ clock, apps, statusDelayMs: 5, ...opts.emulator });
  const db = await createTestDatabase();
  const secret = randomBytes(32).toString('base64url');
  // A known port: PUBLIC_URL names it, and WhatsApp (the emulator) downloads media from its signed links.
  const port = await freePort();
  const config = {
    ...loadConfig({
      DATABASE_URL: db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'wa-e2e-')), JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      META_GRAPH_URL: emu.urls.api!, META_APP_SECRET: apps.meta.appSecret, META_VERIFY_TOKEN: apps.meta.verifyToken, PUBLIC_URL: `http://127.0.0.1:${port}`,
      RATE_LIMIT_CONNECT: '1000', RATE_LIMIT_SEND: '100000', BACKOFF_BASE_MS: '100', BACKOFF_CAP_MS: '1000',
      // The emulator and the test share this process's loop: a loaded machine must not shed the test's own requests.
      OVERLOAD_LAG_MS: '0',
      ...opts.env,
    }),
    port,
  };
  const app = await startApp(config);
  const w: WaWorld = {
    emu, apps, clock, db, app, secret,
    async call(sub, method, path, body) {
      const res = await fetch(app.url + path, {
        method,
        headers: { authorization: `Bearer ${mintToken({ secret, sub })}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any };
    },
    async control(method, path, body, query) {
      const a = await emu.control(method, path, new URLSearchParams(query ?? {}), body ?? {});
      if (!a || a.status >= 400) throw new Error(`emulator ${method} ${path}: ${JSON.stringify(a)}`);
      return a.body;
    },
    number: (extra) => w.control('POST', '/numbers', extra ?? {}),
    async stop() {
      await app.stop().catch(() => undefined);
      await emu.stop();
      await db.drop();
    },
  };
  return w;
}

/** tests/helpers/stack.ts's until, with 15 s by default: WhatsApp statuses come back by webhook. */
export const until = <T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> => waitUntil(fn, what, timeoutMs);
