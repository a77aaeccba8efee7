import { createHash, randomBytes } from 'node:crypto';
import { AuthKey } from 'telegram/crypto/AuthKey.js';
import { StringSession } from 'telegram/sessions/index.js';
import { BotApiServer } from './bot-api/server.ts';
import { ControlServer } from './control/server.ts';
import { loadServerKey } from './crypto/server-keys.ts';
import { MtprotoServer } from './mtproto/server.ts';
import { platformsReady, resolveApps, sharedClock, startPlatforms } from './platforms/registry.ts';
import type { EmulatorApps, EmulatorClock, PlatformEmulator, PlatformName } from './platforms/types.ts';
import { faultTypes, type FaultType } from './world/faults.ts';
import { TgError, type BotRec, type Clock, type CodeType, type Stats } from './world/types.ts';
import { World, botApiChatId, type DeliveredView, type Incoming, type Limits, type NewBot, type NewChat, type NewUser } from './world/world.ts';

// The Telegram test DC (EMULATOR.md): MTProto over TCP for GramJS (one listener per data center),
// the Bot API over HTTP, and a control API, all over one World. Tests start it in-process;
// `npm run emulator` runs it standalone.

export interface EmulatorOptions {
  /** Loopback by default: the control API must never face a network. */
  host?: string;
  /** DC 1's port; DC k listens on mtprotoPort + k - 1 (any free ports when 0 or absent). */
  mtprotoPort?: number;
  /** Data centers (1-5, default 3), each with its own port and auth keys; accounts live on one. */
  dcs?: number;
  botApiPort?: number;
  controlPort?: number;
  /** Domain time (code expiry, QR tokens, flood windows, message dates); protocol time stays real. */
  clock?: Clock;
  codeTtlMs?: number;
  limits?: Partial<Limits>;
  maxMessages?: number;
  /** Where the RSA server key is kept (default: os.tmpdir()/integration-service-emulator). */
  keyDir?: string;
  /** Platforms served besides Telegram (EMULATOR.md "The other platforms"), e.g. ['instagram', 'whatsapp']. */
  platforms?: readonly PlatformName[];
  /** App credentials the platforms accept (default: the daemon's env variables, else generated). */
  apps?: Partial<EmulatorApps>;
  /** Per-platform start options (processing delays, limits, webhook retries …). */
  platformOptions?: Partial<Record<PlatformName, object>>;
}

export interface Fault {
  type: FaultType;
  target?: string | number;
  seconds?: number;
  count?: number;
  /** migrate: the DC named in NETWORK_MIGRATE_<dc>. */
  dc?: number;
  /** migrate: only this MTProto method answers it ("messages.SendMessage" or "messages.sendMessage"). */
  method?: string;
}

export type { Clock, CodeType, DeliveredView, Incoming, Limits, NewBot, NewChat, NewUser, Stats };

export interface Emulator {
  /** "127.0.0.1:P", DC 1: the value for TELEGRAM_DC. */
  mtproto: string;
  /** Every DC's "host:port" by DC id ("1" is `mtproto`). */
  dcs: Record<string, string>;
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
  /** DC `dc`'s MTProto port. */
  dcPort(dc: number): number;
  createUser(input: NewUser): Promise<{ userId: number }>;
  lastCode(phone: string): { code: string; type: CodeType } | undefined;
  /** The 2FA recovery code last e-mailed to the user (auth.requestPasswordRecovery). */
  recoveryCode(phone: string): { code: string } | undefined;
  acceptQr(token: string, phone: string): void;
  createBot(input: NewBot): { botId: number; token: string };
  /** The bot's owner sets a webhook elsewhere (as its own setWebhook would): getUpdates answers 409 from then on. */
  setWebhook(bot: string | number, url: string): void;
  deleteWebhook(bot: string | number): void;
  /** inviteLink (t.me/+hash, for messages.checkChatInvite) is an extra to EMULATOR.md. */
  createChat(input: NewChat): { chatId: number; inviteLink: string };
  pushUpdate(input: Incoming): { messageId: number };
  delivered(filter?: { chatId?: number; fromId?: number }): DeliveredView[];
  fault(input: Fault): void;
  stats(): Stats;
  reset(): void;
  /** Extra to EMULATOR.md: a logged-in StringSession for `phone` without DH or login (benchmarks, fixtures). */
  createSession(phone: string): Promise<string>;
  /** The platforms served besides Telegram, by name. */
  platforms: ReadonlyMap<PlatformName, PlatformEmulator>;
  apps: EmulatorApps;
  /** Domain time shared by Telegram and every platform; `POST /clock {advanceS}` moves it. */
  clock: EmulatorClock;
  /** The ready line's platform part: `{ instagram: {api, oauth}, …, apps }`. */
  platformsReady(): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const host = opts.host ?? '127.0.0.1';
  const clock = sharedClock(opts.clock);
  const apps = resolveApps(opts.apps);
  const platforms = await startPlatforms(opts.platforms ?? [], { host, clock, apps, options: opts.platformOptions });
  const world = new World({ clock, codeTtlMs: opts.codeTtlMs, limits: opts.limits, maxMessages: opts.maxMessages, dcs: opts.dcs });
  const serverKey = loadServerKey(opts.keyDir);
  const dcServers = Array.from({ length: world.dcCount }, (_, i) => new MtprotoServer(world, serverKey, i + 1));
  const botApi = new BotApiServer(world);
  const target = (t: string | number | undefined) => {
    if (t === undefined || t === null || t === '') return undefined;
    const acc = world.resolveTarget(t);
    if (!acc) throw new TgError(404, 'unknown fault target');
    return acc.id;
  };
  const bot = (ref: string | number): BotRec => {
    const acc = ref === undefined || ref === null || ref === '' ? undefined : world.resolveTarget(ref);
    if (acc?.kind !== 'bot') throw new TgError(404, 'no such bot');
    return acc;
  };

  const emu: Emulator = {
    mtproto: '', dcs: {}, botApi: '', control: '', serverKeys: serverKey.publicPemPath, host,
    mtprotoPort: 0, botApiPort: 0, controlPort: 0, world,
    dcPort: (dc) => {
      const a = world.dcAddresses.get(dc);
      if (!a) throw new TgError(404, `no DC ${dc}`);
      return a.port;
    },
    createUser: async (input) => ({ userId: (await world.createUser(input)).id }),
    lastCode: (phone) => world.login.lastCode(phone),
    recoveryCode: (phone) => {
      const code = world.login.recoveryCode(phone);
      return code === undefined ? undefined : { code };
    },
    acceptQr: (token, phone) => world.login.acceptQr(token, phone),
    createBot: (input) => {
      const b = world.createBot(input);
      return { botId: b.id, token: b.token };
    },
    setWebhook: (ref, url) => {
      if (typeof url !== 'string' || !URL.canParse(url)) throw new TgError(400, 'url must be a URL');
      world.setWebhook(bot(ref), { url, maxConnections: 40 });
    },
    deleteWebhook: (ref) => world.setWebhook(bot(ref), undefined),
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
        case 'migrate': {
          const dc = Number(input.dc);
          if (!Number.isInteger(dc) || dc < 1 || dc > world.dcCount) throw new TgError(400, `migrate needs dc from 1 to ${world.dcCount}`);
          if (input.method !== undefined && typeof input.method !== 'string') throw new TgError(400, 'method must be an MTProto method name');
          return world.faults.armMigrate(id, dc, Number(input.count ?? 1), input.method);
        }
      }
    },
    stats: () => world.stats(),
    reset: () => {
      world.reset();
      for (const p of platforms.values()) p.reset();
    },
    createSession: async (phone) => {
      const user = world.userByPhone(phone);
      if (!user) throw new TgError(404, 'PHONE_NUMBER_INVALID');
      let key = randomBytes(256);
      while (key[0] === 0) key = randomBytes(256); // GramJS keeps keys as minimal big-endian bytes
      world.registerAuthKey(key, user.dc, user.id);
      const session = new StringSession('');
      // The key lives on the account's home DC. GramJS saves the port as int16 and ignores it on
      // connect, so the session says 443 and the client maps the DC id to the emulator's port.
      session.setDC(user.dc, host, 443);
      session.setAuthKey(new AuthKey(key, createHash('sha1').update(key).digest()));
      return session.save();
    },
    platforms, apps, clock,
    platformsReady: () => platformsReady(platforms, apps),
    stop: async () => {
      await Promise.all([...dcServers.map((s) => s.close()), botApi.close(), control.close(), ...[...platforms.values()].map((p) => p.stop())]);
    },
  };
  const control = new ControlServer(emu);
  for (const s of dcServers) {
    const port = await s.listen(host, opts.mtprotoPort ? opts.mtprotoPort + s.dcId - 1 : 0);
    emu.dcs[s.dcId] = `${host}:${port}`;
  }
  emu.mtprotoPort = emu.dcPort(1);
  emu.botApiPort = await botApi.listen(host, opts.botApiPort ?? 0);
  emu.controlPort = await control.listen(host, opts.controlPort ?? 0);
  emu.mtproto = `${host}:${emu.mtprotoPort}`;
  emu.botApi = `http://${host}:${emu.botApiPort}`;
  emu.control = `http://${host}:${emu.controlPort}`;
  return emu;
}
