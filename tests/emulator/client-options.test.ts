import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { _serverKeys } from 'telegram/crypto/RSA.js';
import { AuthKey } from 'telegram/crypto/AuthKey.js';
import type { ConnectionTCPFull } from 'telegram/network/connection/TCPFull.js';
import { StringSession } from 'telegram/sessions/index.js';
import {
  createTelegramClient, parseDc, pinnedConnection, registerServerKeys, saveSession, serverKeyFingerprint,
} from '../../src/platforms/telegram/client-options.ts';
import { loadServerKey } from './crypto/server-keys.ts';

// src/platforms/telegram/client-options.ts: how the daemon points GramJS at a DC by configuration.

const hex = (n: { toString(radix: number): string }) => {
  const h = n.toString(16);
  return Buffer.from(h.length % 2 ? `0${h}` : h, 'hex').toString('base64url');
};

test("fingerprint matches Telegram's for GramJS's built-in production key", () => {
  const [fp, key] = [..._serverKeys.entries()][0]!;
  const pub = createPublicKey({ key: { kty: 'RSA', n: hex(key.n), e: hex(BigInt(key.e)) }, format: 'jwk' });
  assert.is(serverKeyFingerprint(pub).toString(), fp);
});

test("registerServerKeys adds the emulator's key under the fingerprint it announces", () => {
  const serverKey = loadServerKey();
  const pem = readFileSync(serverKey.publicPemPath, 'utf8');
  const [fp] = registerServerKeys(`${pem}\n${pem}`);
  assert.is(fp, serverKey.fingerprint);
  assert.ok(_serverKeys.has(String(fp)));
  assert.throws(() => registerServerKeys('not a key'), /no PEM public key/);
});

test('parseDc accepts host:port and rejects the rest', () => {
  assert.equal(parseDc('127.0.0.1:4430'), { host: '127.0.0.1', port: 4430 });
  assert.equal(parseDc('[::1]:443'), { host: '::1', port: 443 });
  for (const bad of ['127.0.0.1', ':443', 'host:0', 'host:70000', 'host:x']) assert.throws(() => parseDc(bad), /host:port/);
});

test('the pinned connection ignores the port GramJS passes', () => {
  const Conn = pinnedConnection(40_123);
  const c = new Conn({ ip: '127.0.0.1', port: 80, dcId: 2, loggers: console as never, socket: class { constructor() {} } as never, proxy: undefined, testServers: false });
  assert.is((c as unknown as { _port: number })._port, 40_123);
});

test('createTelegramClient: no silent flood sleeps, a new session on DC 1 at TELEGRAM_DC with its real port', () => {
  const session = new StringSession('');
  const client = createTelegramClient(session, { apiId: 1, apiHash: 'h', dc: '127.0.0.1:45000' });
  assert.is(client.floodSleepThreshold, 0);
  assert.is(session.serverAddress, '127.0.0.1');
  assert.is(session.dcId, 1);
  assert.is(session.port, 45_000);
  assert.is(client.session, session);
});

test('saveSession keeps a port above 32767 (GramJS writes int16) and reloads to the same DC and port', async () => {
  const session = new StringSession('');
  session.setDC(3, '127.0.0.1', 45_001);
  session.setAuthKey(new AuthKey(Buffer.alloc(256, 7), Buffer.alloc(20)));
  const saved = saveSession(session);
  const again = new StringSession(saved);
  await again.load();
  createTelegramClient(again, { apiId: 1, apiHash: 'h', dc: '127.0.0.1:45000' });
  assert.equal([again.dcId, again.serverAddress, again.port], [3, '127.0.0.1', 45_001]);
  assert.is(again.save(), saved, 'the client saves the same string');
});

test('a session saved with port 443 (before DCs had ports) still connects to TELEGRAM_DC', () => {
  const session = new StringSession('');
  session.setDC(2, '127.0.0.1', 443);
  const client = createTelegramClient(session, { apiId: 1, apiHash: 'h', dc: '127.0.0.1:45000' });
  const Conn = (client as unknown as { _connection: typeof ConnectionTCPFull })._connection;
  const c = new Conn({ ip: '127.0.0.1', port: 80, dcId: 2, loggers: console as never, socket: class { constructor() {} } as never, proxy: undefined, testServers: false });
  assert.is((c as unknown as { _port: number })._port, 45_000);
});

test.run();
