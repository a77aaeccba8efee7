import { readFileSync } from 'node:fs';
import { Api, Logger, TelegramClient, errors } from 'telegram';
import { AuthKey } from 'telegram/crypto/AuthKey.js';
import { LogLevel } from 'telegram/extensions/Logger.js';
import { ConnectionTCPFull } from 'telegram/network/connection/TCPFull.js';
import { StringSession } from 'telegram/sessions/index.js';
import { createTelegramClient, registerServerKeys } from '../../../src/platforms/telegram/client-options.ts';
import type { Emulator } from '../index.ts';

// Test helpers for driving the real GramJS client against the emulator. GramJS traps
// (EMULATOR.md): connect() and invoke() can hang forever, so everything runs under our own timeout,
// and every client is destroy()ed so the test process can exit.

export const API = { apiId: 12345, apiHash: '0123456789abcdef0123456789abcdef' };

export async function withTimeout<T>(p: Promise<T>, ms = 10_000, label = 'call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${label} timed out after ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

export interface TestClient { client: TelegramClient; session: StringSession }

const live = new Set<TelegramClient>();

export function newClient(emu: Emulator, sessionString = ''): TestClient {
  const session = new StringSession(sessionString);
  const client = createTelegramClient(session, {
    ...API, dc: emu.mtproto, serverKeysPem: readFileSync(emu.serverKeys, 'utf8'), connectionRetries: 1,
  });
  live.add(client);
  return { client, session };
}

export async function connected(emu: Emulator, sessionString = ''): Promise<TestClient> {
  const tc = newClient(emu, sessionString);
  await withTimeout(tc.client.connect(), 15_000, 'connect');
  return tc;
}

const registered = new Set<string>();

// GramJS trap (2.26.22): _switchDC() unsets the auth key and only then disconnects, so a send loop
// that already took something to send (the ack of the *_MIGRATE_X answer) waits in
// AuthKey.waitForKey() for a key that never comes, polling every 20 ms for the life of the process.
// One such zombie per DC switch; here its timer is unref'd so that a test process can still exit.
AuthKey.prototype.waitForKey = async function waitForKey(this: AuthKey): Promise<void> {
  while (!this.keyId) await new Promise((resolve) => setTimeout(resolve, 20).unref());
};

/**
 * A GramJS client as GramJS runs against Telegram's several DCs: DC ids map to the emulator's ports
 * (GramJS looks the DC up in help.getConfig and connects to port 443 of it, so the connection class
 * swaps the port), and requests are retried (`requestRetries`, default 3) so that GramJS's own
 * *_MIGRATE_X handling switches DCs. A new session starts on `dc` (default 1, what TELEGRAM_DC is).
 */
export function dcClient(emu: Emulator, opts: { session?: string; dc?: number; requestRetries?: number } = {}): TestClient {
  if (!registered.has(emu.serverKeys)) {
    registerServerKeys(readFileSync(emu.serverKeys, 'utf8'));
    registered.add(emu.serverKeys);
  }
  const session = new StringSession(opts.session ?? '');
  if (!opts.session) session.setDC(opts.dc ?? 1, emu.host, 443);
  class EmulatorDc extends ConnectionTCPFull {
    constructor(o: ConstructorParameters<typeof ConnectionTCPFull>[0]) {
      super({ ...o, port: emu.dcPort(o.dcId) });
    }
  }
  const client = new TelegramClient(session, API.apiId, API.apiHash, {
    connection: EmulatorDc, floodSleepThreshold: 0, connectionRetries: 1, requestRetries: opts.requestRetries ?? 3,
    baseLogger: new Logger(LogLevel.NONE),
  });
  live.add(client);
  return { client, session };
}

export async function dcConnected(emu: Emulator, opts: Parameters<typeof dcClient>[1] = {}): Promise<TestClient> {
  const tc = dcClient(emu, opts);
  await withTimeout(tc.client.connect(), 15_000, 'connect');
  return tc;
}

interface ExportedSenders {
  _exportedSenderPromises: Map<number, Promise<{ disconnect(): Promise<void> } | undefined>>;
  _exportedSenderReleaseTimeouts: Map<number, NodeJS.Timeout>;
}

export async function destroyAll(): Promise<void> {
  await Promise.all([...live].map(async (c) => {
    // GramJS trap (2.26.22, telegramBaseClient.js disconnect()): it walks the Maps of senders borrowed
    // for other DCs with Object.values(), which sees nothing, so destroy() leaves them connected and
    // reconnecting forever once the DC is gone, and their 30 s release timers armed.
    const own = c as unknown as ExportedSenders;
    for (const t of own._exportedSenderReleaseTimeouts.values()) clearTimeout(t);
    for (const p of own._exportedSenderPromises.values()) await withTimeout(p.then((s) => s?.disconnect()), 5000, 'exported sender').catch(() => undefined);
    await withTimeout(c.destroy(), 5000, 'destroy').catch(() => undefined);
  }));
  live.clear();
}

/** The Telegram error name of a rejected call ("PHONE_CODE_INVALID"), or throws if it resolved. */
export async function rpcErrorOf(p: Promise<unknown>): Promise<string> {
  try {
    await withTimeout(p);
  } catch (err) {
    const e = err as { errorMessage?: string; message: string; newDc?: number };
    if (err instanceof errors.FloodWaitError) return `FLOOD_WAIT_${err.seconds}`;
    // GramJS's *MigrateError classes keep only the DC: rebuild Telegram's name (USER_MIGRATE_2).
    if (e.newDc !== undefined) return `${err!.constructor.name.replace(/MigrateError$/, '').toUpperCase()}_MIGRATE_${e.newDc}`;
    return e.errorMessage ?? e.message;
  }
  throw new Error('expected the call to fail');
}

/** Phone login step by step, the way the adapter does it (no client.start() callbacks). */
export async function phoneLogin(emu: Emulator, client: TelegramClient, phone: string): Promise<Api.auth.Authorization> {
  const { phoneCodeHash } = await withTimeout(client.sendCode(API, phone));
  const code = emu.lastCode(phone)!.code;
  return (await withTimeout(client.invoke(new Api.auth.SignIn({ phoneNumber: phone, phoneCodeHash, phoneCode: code })))) as Api.auth.Authorization;
}

/** Polls a condition every 20 ms (waiting on GramJS's own reconnect timers, which no clock controls). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, label = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${label} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class ManualClock {
  constructor(public t = Date.now()) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
