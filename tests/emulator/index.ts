import { createHash, randomBytes } from 'node:crypto';
import { AuthKey } from 'telegram/crypto/AuthKey.js';
import { StringSession } from 'telegram/sessions/index.js';
import { BotApiServer } from './bot-api/server.ts';
import { ControlServer } from './control/server.ts';
import { loadServerKey } from './crypto/server-keys.ts';
import { MtprotoServer } from './mtproto/server.ts';
import { faultTypes, type FaultType } from './world/faults.ts';
import { TgError, type Clock, type Stats } from './world/types.ts';
import { World, botApiChatId, type DeliveredView, type Incoming, type Limits, type NewBot, type NewChat, type NewUser } from './world/world.ts';

// The Telegram test DC (EMULATOR.md): MTProto over TCP for GramJS, the Bot API over HTTP, and a
// control API, all over one World. Tests start it in-process; `npm run emulator` runs it standalone.

export interface EmulatorOptions {
  /** Loopback by default: the control API must never face a network. */
  host?: string;
  mtprotoPort?: number;
  botApiPort?: number;
  controlPort?: number;
  /** Domain time (code expiry, QR tokens, flood windows, message dates); protocol time stays real. */
  clock?: Clock;
  codeTtlMs?: number;
  limits?: Partial<Limits>;
  maxMessages?: number;
  /** Where the RSA server key is kept (default: os.tmpdir()/integration-service-emulator). */
  keyDir?: string;
}

export interface Fault { type: FaultType; target?: string | number; seconds?: number; count?: number }

export type { Clock, DeliveredView, Incoming, Limits, NewBot, NewChat, NewUser, Stats };

export interface Emulator {
  /** "127.0.0.1:P", the value for TELEGRAM_DC. */
  mtproto: string;
  /** "http://127.0.0.1:P", the value for TELEGRAM_BOT_API_URL. */
  botApi: string;
  control: string;
  /** Path of the PEM with the emulator's RSA public key (TELEGRAM_SERVER_KEYS). */
  serverKeys: string;
  host: string;
  mtprotoPort: number;
  botApiPort: number;
  controlPort: number;
  world: World;
  createUser(input: NewUser): Promise<{ userId: number }>;
  lastCode(phone: string): { code: string; type: 'app' } | undefined;
  acceptQr(token: string, phone: string): void;
  createBot(input: NewBot): { botId: number; token: string };
  /** inviteLink (t.me/+hash, for messages.checkChatInvite) is an extra to EMULATOR.md. */
  createChat(input: NewChat): { chatId: number; inviteLink: string };
  pushUpdate(input: Incoming): { messageId: number };
  delivered(filter?: { chatId?: number; fromId?: number }): DeliveredView[];
  fault(input: Fault): void;
  stats(): Stats;
  reset(): void;
  /** Extra to EMULATOR.md: a logged-in StringSession for `phone` without DH or login (benchmarks, fixtures). */
  createSession(phone: string): Promise<string>;
  stop(): Promise<void>;
}

const EMULATOR_DC_ID = 2;

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const host = opts.host ?? '127.0.0.1';
  const world = new World({ clock: opts.clock, codeTtlMs: opts.codeTtlMs, limits: opts.limits, maxMessages: opts.maxMessages });
  const serverKey = loadServerKey(opts.keyDir);
  const mtproto = new MtprotoServer(world, serverKey);
  const botApi = new BotApiServer(world);
  const target = (t: string | number | undefined) => {
    if (t === undefined || t === null || t === '') return undefined;
    const acc = world.resolveTarget(t);
    if (!acc) throw new TgError(404, 'unknown fault target');
    return acc.id;
  };

  const emu: Emulator = {
    mtproto: '', botApi: '', control: '', serverKeys: serverKey.publicPemPath, host,
    mtprotoPort: 0, botApiPort: 0, controlPort: 0, world,
    createUser: async (input) => ({ userId: (await world.createUser(input)).id }),
    lastCode: (phone) => {
      const code = world.login.lastCode(phone);
      return code === undefined ? undefined : { code, type: 'app' };
    },
    acceptQr: (token, phone) => world.login.acceptQr(token, phone),
    createBot: (input) => {
      const bot = world.createBot(input);
      return { botId: bot.id, token: bot.token };
    },
    createChat: (input) => {
      const chat = world.createChat(input);
      return { chatId: botApiChatId(chat), inviteLink: `https://t.me/+${chat.inviteHash}` };
    },
    pushUpdate: (input) => ({ messageId: world.inject(input).id }),
    delivered: (filter) => world.delivered(filter),
    fault: (input) => {
      if (!faultTypes.includes(input.type)) throw new TgError(400, `unknown fault type ${String(input.type)}`);
      const id = target(input.target);
      const seconds = Number(input.seconds ?? 0);
      switch (input.type) {
        case 'drop-connections': return world.dropConnections(id);
        case 'revoke-session': return world.revoke(id);
        case 'clear': return world.faults.clear();
        case 'flood-wait':
          if (!(seconds > 0)) throw new TgError(400, 'flood-wait needs seconds > 0');
          return world.faults.arm('flood-wait', id, seconds, Number(input.count ?? 1));
        case 'latency':
          if (!(seconds > 0)) throw new TgError(400, 'latency needs seconds > 0');
          return world.faults.arm('latency', id, seconds, 0);
        case 'refuse-connections': return world.faults.arm('refuse-connections', id, seconds, 0);
      }
    },
    stats: () => world.stats(),
    reset: () => world.reset(),
    createSession: async (phone) => {
      const user = world.userByPhone(phone);
      if (!user) throw new TgError(404, 'PHONE_NUMBER_INVALID');
      let key = randomBytes(256);
      while (key[0] === 0) key = randomBytes(256); // GramJS keeps keys as minimal big-endian bytes
      world.registerAuthKey(key, user.id);
      const session = new StringSession('');
      session.setDC(EMULATOR_DC_ID, host, 443);
      session.setAuthKey(new AuthKey(key, createHash('sha1').update(key).digest()));
      return session.save();
    },
    stop: async () => {
      await Promise.all([mtproto.close(), botApi.close(), control.close()]);
    },
  };
  const control = new ControlServer(emu);
  emu.mtprotoPort = await mtproto.listen(host, opts.mtprotoPort ?? 0);
  emu.botApiPort = await botApi.listen(host, opts.botApiPort ?? 0);
  emu.controlPort = await control.listen(host, opts.controlPort ?? 0);
  emu.mtproto = `${host}:${emu.mtprotoPort}`;
  emu.botApi = `http://${host}:${emu.botApiPort}`;
  emu.control = `http://${host}:${emu.controlPort}`;
  return emu;
}
