import { readFileSync } from 'node:fs';
import { Api, type TelegramClient } from 'telegram';
import { StringSession } from 'telegram/sessions/index.js';
import { createTelegramClient } from '../../../src/platforms/telegram/client-options.ts';
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

export async function destroyAll(): Promise<void> {
  await Promise.all([...live].map((c) => withTimeout(c.destroy(), 5000, 'destroy').catch(() => undefined)));
  live.clear();
}

/** The Telegram error name of a rejected call ("PHONE_CODE_INVALID"), or throws if it resolved. */
export async function rpcErrorOf(p: Promise<unknown>): Promise<string> {
  try {
    await withTimeout(p);
  } catch (err) {
    const e = err as { errorMessage?: string; message: string };
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
