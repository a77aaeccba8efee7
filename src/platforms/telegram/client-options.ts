import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { Logger, TelegramClient, helpers } from 'telegram';
import { _serverKeys } from 'telegram/crypto/RSA.js';
import { LogLevel } from 'telegram/extensions/Logger.js';
import { ConnectionTCPFull } from 'telegram/network/connection/TCPFull.js';
import type { StringSession } from 'telegram/sessions/index.js';
import { serializeBytes } from 'telegram/tl/generationHelpers.js';

// How a GramJS client is pointed at a DC by configuration (TELEGRAM_DC, TELEGRAM_SERVER_KEYS):
// extra server RSA keys, a TCP-full connection pinned to the configured port (GramJS connects to
// 80/443 whatever the session says) and a client factory with the options the adapter relies on.
// No business logic here.

/** Where the MTProto DC is (TELEGRAM_DC, TELEGRAM_SERVER_KEYS); both absent = Telegram itself. */
export interface TelegramEndpoint {
  /** "host:port" of the MTProto DC; absent = Telegram's own DCs. */
  dc?: string;
  /** PEM text with one or more extra server public keys (the emulator's). */
  serverKeysPem?: string;
}

export interface TelegramClientConfig extends TelegramEndpoint {
  apiId: number;
  apiHash: string;
  /** Connect attempts before connect() gives up (GramJS retries forever by default). */
  connectionRetries?: number;
}

/** Telegram's key fingerprint: the lower 64 bits of SHA-1 over TL-serialised n and e, as a signed long. */
export function serverKeyFingerprint(key: KeyObject): bigint {
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.n || !jwk.e) throw new Error('not an RSA public key');
  const tl = Buffer.concat([serializeBytes(Buffer.from(jwk.n, 'base64url')), serializeBytes(Buffer.from(jwk.e, 'base64url'))]);
  return createHash('sha1').update(tl).digest().readBigInt64LE(12);
}

/** Adds every public key of the PEM text to GramJS's server key map; returns their fingerprints. */
export function registerServerKeys(pem: string): bigint[] {
  const blocks = pem.match(/-----BEGIN (?:RSA )?PUBLIC KEY-----[^-]+-----END (?:RSA )?PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new Error('TELEGRAM_SERVER_KEYS holds no PEM public key');
  return blocks.map((block) => {
    const key = createPublicKey(block);
    const fingerprint = serverKeyFingerprint(key);
    const jwk = key.export({ format: 'jwk' });
    _serverKeys.set(fingerprint.toString(), {
      n: helpers.readBigIntFromBuffer(Buffer.from(jwk.n!, 'base64url'), false, false),
      e: Number(helpers.readBigIntFromBuffer(Buffer.from(jwk.e!, 'base64url'), false, false)),
    });
    return fingerprint;
  });
}

export function parseDc(dc: string): { host: string; port: number } {
  const at = dc.lastIndexOf(':');
  const host = dc.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(dc.slice(at + 1));
  if (at <= 0 || !host || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`TELEGRAM_DC must be host:port, got "${dc}"`);
  return { host, port };
}

/** ConnectionTCPFull that ignores the port GramJS passes (always 80/443) and uses the configured one. */
export function pinnedConnection(port: number): typeof ConnectionTCPFull {
  return class PinnedTCPFull extends ConnectionTCPFull {
    constructor(opts: ConstructorParameters<typeof ConnectionTCPFull>[0]) {
      super({ ...opts, port });
    }
  };
}

// GramJS writes the session's port as int16 and ignores it on connect (always 80/443). Against
// Telegram the port is 443 anyway; against a DC on another port (the emulator's DCs sit on ephemeral
// ports above 32767) the session keeps the real port as uint16 (saveSession) and the connection class
// connects there. A session saved before this (port 443) keeps connecting to TELEGRAM_DC's port.
const LEGACY_PORTS = new Set([80, 443]);
// The DC TELEGRAM_DC names: the emulator serves DC 1 there (its others come from help.getConfig).
const CONFIGURED_DC_ID = 1;

/** StringSession.save() with the port as uint16 (GramJS's int16 throws above 32767); loads with GramJS's reader. */
export function saveSession(session: StringSession): string {
  const key = session.authKey?.getKey();
  if (!key || !session.serverAddress || !session.port) return '';
  const address = Buffer.from(session.serverAddress);
  const head = Buffer.alloc(3);
  head.writeUInt8(session.dcId, 0);
  head.writeUInt16BE(address.length, 1);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(session.port, 0);
  return `1${Buffer.concat([head, address, port, key]).toString('base64')}`;
}

const registeredPems = new Set<string>();

export function createTelegramClient(session: StringSession, config: TelegramClientConfig): TelegramClient {
  // Parsing the PEM and the big-integer conversions cost ~1 ms a client; once per key set is enough.
  if (config.serverKeysPem && !registeredPems.has(config.serverKeysPem)) {
    registerServerKeys(config.serverKeysPem);
    registeredPems.add(config.serverKeysPem);
  }
  // GramJS read a saved port above 32767 as a negative int16.
  if (session.port < 0) session.setDC(session.dcId, session.serverAddress, session.port + 65_536);
  (session as { save(): string }).save = () => saveSession(session);
  let connection: typeof ConnectionTCPFull = ConnectionTCPFull;
  if (config.dc) {
    const { host, port } = parseDc(config.dc);
    if (!session.serverAddress) session.setDC(CONFIGURED_DC_ID, host, port);
    // Read at connect time: a session switched to another DC (a migration) carries that DC's port.
    connection = class DcTCPFull extends ConnectionTCPFull {
      constructor(opts: ConstructorParameters<typeof ConnectionTCPFull>[0]) {
        super({ ...opts, port: session.port && !LEGACY_PORTS.has(session.port) ? session.port : port });
      }
    };
  }
  return new TelegramClient(session, config.apiId, config.apiHash, {
    connection,
    // Flood waits are the adapter's to handle (surface, schedule), never a silent sleep inside GramJS.
    floodSleepThreshold: 0,
    connectionRetries: config.connectionRetries ?? 2,
    retryDelay: 500,
    requestRetries: 1,
    baseLogger: new Logger(LogLevel.NONE),
  });
}
