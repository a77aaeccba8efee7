import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { Api } from 'telegram';
import { fromCallback, fromPromise, type AnyStateMachine } from 'xstate';
import {
  accountMachine, type CheckPasswordOutput, type ExportQrOutput, type SendCodeOutput, type SignInInput, type SignInOutput, type StepInput,
} from '../../../machines/account.machine.ts';
import type { ConnectOutput } from '../../../machines/connection.ts';
import { AppError } from '../../errors.ts';
import { retryFor } from '../../retry.ts';
import type { Driver, DriverContext, ReceivedMessage } from '../adapter.ts';
import { tgError } from './codes.ts';
import { AccountClient, migrationOf, type AccountClientOptions, type ClientEvent } from './account-client.ts';
import { checkAccountChat, requireAdmin, resolvePeer } from './account-chats.ts';
import { formatText } from './formatting.ts';
import { accountMedia } from './incoming-media.ts';
import { fileIdFor, randomIdFor } from './random-id.ts';

// The I/O of one Telegram user account: fills the account machine's slots with GramJS calls.
// State kept here and nowhere else: the live client, the decrypted session/phone/login state, and
// the 2FA password between PASSWORD and the end of checkPassword.

export interface AccountDriverOptions extends AccountClientOptions {
  // The ping (ping_delay_disconnect) every heartbeatMs ±10%, 60 s unless the daemon derives a
  // shorter one from the lease TTL (config.ts: 10 s for disconnect_delay 30 s); updates.getState
  // rides along at most every stateCheckMs (the daemon: 60 s; unset: every beat): it notices a revoked
  // session on an idle account.
  // Either notices a dead or half-dead link within a period plus the call timeout. This replaces
  // GramJS's 9 s ping loop: 10,000 accounts at 60 s make ~170 heartbeats/s instead of ~1,100 pings/s.
  heartbeatMs?: number;
  stateCheckMs?: number;
  /** Shared limit on concurrent connects so that a restart of 10,000 accounts does not stampede. */
  connectSlot?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** How long a login state write is retried after Telegram sent a code (default 30 s). */
  loginStateSaveMs?: number;
}

// A login state write that fails after auth.sendCode is retried (retryFor: 0.2 s doubling to 2 s)
// for 30 s in all (18 tries): long enough to ride out a Postgres failover or a Vault restart, short
// enough that the user is not kept from typing the code much longer.
const SAVE_BUDGET_MS = 30_000;

// Only the error's code (a Postgres SQLSTATE, ECONNREFUSED, a Vault status): a driver's error
// message can quote parameters, and these writes carry secrets.
const errorCode = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : 'unknown';
};

type Watcher = (event: { type: string; [k: string]: unknown }) => void;

export interface AccountSlots {
  connect(): Promise<ConnectOutput>;
  sendCode(): Promise<SendCodeOutput>;
  resendCode(): Promise<SendCodeOutput>;
  signIn(code: string): Promise<SignInOutput>;
  checkPassword(): Promise<CheckPasswordOutput>;
  recoverPassword(): Promise<CheckPasswordOutput>;
  exportQr(): Promise<ExportQrOutput>;
  logOut(): Promise<void>;
  watch(sendBack: Watcher): () => void;
}

// The failures the account machine notices itself, in Telegram's words.
export const accountErrors = {
  dropped: { code: 'TG_UNAVAILABLE', message: 'connection to Telegram dropped', category: 'retry' },
  revoked: { code: 'TG_SESSION_EXPIRED', message: 'the session was revoked or logged out elsewhere; log in again', category: 'reauthorize' },
  sessionGone: { code: 'TG_SESSION_EXPIRED', message: 'the saved session is no longer authorised; log in again', category: 'reauthorize' },
} as const;

/** The account machine with its slots provided by `slotsOf` (built once per supervisor). */
export function providedAccountMachine(slotsOf: (connectionId: string) => Driver['slots']): AnyStateMachine {
  const of = (id: string) => slotsOf(id) as unknown as AccountSlots;
  return accountMachine(accountErrors).provide({
    actors: {
      connect: fromPromise<ConnectOutput, StepInput>(({ input }) => of(input.connectionId).connect()),
      sendCode: fromPromise<SendCodeOutput, StepInput>(({ input }) => of(input.connectionId).sendCode()),
      resendCode: fromPromise<SendCodeOutput, StepInput>(({ input }) => of(input.connectionId).resendCode()),
      signIn: fromPromise<SignInOutput, SignInInput>(({ input }) => of(input.connectionId).signIn(input.code)),
      checkPassword: fromPromise<CheckPasswordOutput, StepInput>(({ input }) => of(input.connectionId).checkPassword()),
      recoverPassword: fromPromise<CheckPasswordOutput, StepInput>(({ input }) => of(input.connectionId).recoverPassword()),
      exportQr: fromPromise<ExportQrOutput, StepInput>(({ input }) => of(input.connectionId).exportQr()),
      logOut: fromPromise<void, StepInput>(({ input }) => of(input.connectionId).logOut()),
      watch: fromCallback<any, StepInput>(({ sendBack, input }) => of(input.connectionId).watch(sendBack as Watcher)),
    },
  });
}

const messageUpdates = new Set(['UpdateNewMessage', 'UpdateShortMessage', 'UpdateShortChatMessage', 'UpdateNewChannelMessage']);

export function accountDriver(ctx: DriverContext, opts: AccountDriverOptions): Driver {
  let client: AccountClient | undefined;
  let dropped = false;
  let watcher: Watcher | undefined;
  let password: string | undefined;
  // The recovery code and the optional new password, between RECOVER and the end of recoverPassword.
  let recovery: { code: string; newPassword?: string } | undefined;
  let cache: { session?: string; phone?: string; login_state?: string } | undefined;
  const slot = opts.connectSlot ?? ((fn) => fn());

  const secrets = async () => (cache ??= await ctx.secrets.load());

  // The old client must be fully closed before a new one uses the same auth key, or Telegram sees
  // the key live on two connections (AUTH_KEY_DUPLICATED).
  let closing: Promise<void> = Promise.resolve();
  const discard = async () => {
    const c = client;
    client = undefined;
    if (c) closing = Promise.all([closing, c.destroy()]).then(() => undefined);
    await closing;
  };

  // A client being opened when the driver is disposed (its shard handed over while it connected) is
  // closed as soon as it exists: left open, it holds the auth key while the next owner connects with
  // it, and Telegram answers that owner AUTH_KEY_DUPLICATED. dispose() waits for it. An open asked
  // for after dispose() (a retry out of `error`) is a new generation and goes ahead.
  let generation = 0;
  let opening: Promise<unknown> = Promise.resolve();
  const adopt = async (gen: number, open: () => Promise<AccountClient>): Promise<AccountClient> => {
    if (gen !== generation) throw tgError('TG_UNAVAILABLE', 'the connection was stopped while it connected');
    const p = open();
    opening = Promise.all([opening, p.catch(() => undefined)]);
    const c = await p;
    if (gen !== generation) {
      await c.destroy();
      throw tgError('TG_UNAVAILABLE', 'the connection was stopped while it connected');
    }
    return c;
  };

  const live = (): AccountClient => {
    if (!client || dropped) throw tgError('TG_UNAVAILABLE', 'not connected to Telegram');
    return client;
  };

  const onClientEvent = (c: AccountClient) => (event: ClientEvent) => {
    if (c !== client) return;
    if (event.type === 'state') {
      // -1 disconnected, 0 broken key: either way this client is done. GramJS would reconnect on its
      // own, all clients at once; the machine's jittered backoff spreads the reconnects instead.
      if (event.state !== 1 && !dropped) {
        dropped = true;
        void discard();
        watcher?.({ type: 'CONNECTION_DROPPED' });
      }
      return;
    }
    const update = event.update as { className?: string; updates?: { className?: string }[] };
    if (update.className === 'UpdateLoginToken') return watcher?.({ type: 'QR_SCANNED' });
    if (update.className === 'Updates' || update.className === 'UpdatesCombined') {
      if (update.updates?.some((u) => u.className === 'UpdateLoginToken')) return watcher?.({ type: 'QR_SCANNED' });
      for (const u of update.updates ?? []) if (messageUpdates.has(u.className ?? '')) watcher?.({ type: 'UPDATE', update: u });
      return;
    }
    if (messageUpdates.has(update.className ?? '')) watcher?.({ type: 'UPDATE', update });
  };

  const open = async (): Promise<AccountClient> => {
    if (client && !dropped) return client;
    const gen = generation;
    await discard();
    // The secrets read (a query and a decrypt) waits for the slot too: 10,000 of them at once at a
    // restart came back as one burst of rows that held the loop.
    const [s, c] = await slot(async () => {
      const loaded = await secrets();
      // Another node may own this connection by now (its lease moved on while this one waited or
      // stalled): a socket opened here would use the auth key twice.
      if (ctx.runsHere && !ctx.runsHere()) throw tgError('TG_UNAVAILABLE', 'this node no longer runs the connection');
      return [loaded, await adopt(gen, () => AccountClient.open(loaded.session, opts))] as const;
    });
    client = c;
    dropped = false;
    if (gen !== generation) { // disposed between the open and here
      await discard();
      throw tgError('TG_UNAVAILABLE', 'the connection was stopped while it connected');
    }
    c.onEvent(onClientEvent(c));
    // The auth key exists from the first connect on: keep it so a restart in awaiting-code can still sign in.
    const session = c.saveSession();
    if (session !== s.session) {
      await ctx.secrets.save('session', session);
      s.session = session;
    }
    return c;
  };

  // The session moves to the DC Telegram names (PHONE_/USER_/NETWORK_MIGRATE_X, a QR
  // loginTokenMigrateTo): a fresh key there, saved at once so that the code Telegram sends to that
  // key, and the login that follows, survive a restart on the right DC. Only before sign-in: the old
  // key holds no authorization to carry over.
  const moveTo = async (dc: number): Promise<AccountClient> => {
    const gen = generation;
    const address = await live().dcAddress(dc);
    await discard();
    const c = await slot(() => adopt(gen, () => AccountClient.openOn(dc, address, opts)));
    client = c;
    dropped = false;
    if (gen !== generation) {
      await discard();
      throw tgError('TG_UNAVAILABLE', 'the connection was stopped while it connected');
    }
    c.onEvent(onClientEvent(c));
    const session = c.saveSession();
    await ctx.secrets.save('session', session);
    (await secrets()).session = session;
    ctx.logger.info('telegram login moved to another data center', { connectionId: ctx.connectionId, dc });
    return c;
  };

  // A login step after a restart or a drop reconnects with the saved session (the same auth key,
  // so the code Telegram sent to it is still good) instead of failing. A migration is followed (at
  // most 2 hops: Telegram names the home DC in its first answer).
  const step = async <T>(fn: (c: AccountClient) => Promise<T>): Promise<T> => {
    let c = client && !dropped ? client : await guarded(open);
    for (let hop = 0; ; hop++) {
      try {
        return await fn(c);
      } catch (err) {
        const dc = migrationOf(err);
        if (dc !== undefined && hop < 2 && dc !== c.dcId) {
          c = await moveTo(dc);
          continue;
        }
        if (err instanceof AppError && err.code === 'TG_UNAVAILABLE') {
          dropped = true;
          await discard();
        }
        throw err;
      }
    }
  };

  const guarded = <T>(fn: () => Promise<T>) => ctx.guard(fn);

  const impl: AccountSlots = {
    connect: () =>
      ctx.guard(async () => {
        try {
          const c = await open();
          const profile = await c.profileIfAuthorized();
          if (!profile) return { authorized: false };
          // Authorised with a login state still stored: a delete that failed after sign-in.
          await forgetLoginState();
          return { authorized: true, profile };
        } catch (err) {
          await discard();
          throw err;
        }
      }),
    sendCode: async () => {
      const { phone } = await secrets();
      if (!phone) throw new AppError('INVALID_STATE', 'this connection has no phone number');
      const sent = await step((c) => c.sendCode(phone));
      // Telegram has sent the code now. A failure from here on would make the machine back off
      // and call sendCode again: a NEW code to the user on every retry of a storage outage, and
      // PHONE_NUMBER_FLOOD after a few. So the hash is kept in memory first, and a write that
      // still fails is given up: signIn works from memory; only a restart would need a new code.
      const state = JSON.stringify({ phoneCodeHash: sent.phoneCodeHash });
      cache!.login_state = state;
      await persistLoginState(state);
      const { phoneCodeHash: _hash, ...out } = sent;
      return out;
    },
    resendCode: async () => {
      const s = await secrets();
      if (!s.phone || !s.login_state) throw tgError('TG_CODE_EXPIRED', 'no login code was requested; reconnect to get a new one');
      const { phoneCodeHash } = JSON.parse(s.login_state) as { phoneCodeHash: string };
      const sent = await step((c) => c.resendCode(s.phone!, phoneCodeHash));
      // The resent code belongs to the new hash: the same care as after sendCode.
      const state = JSON.stringify({ phoneCodeHash: sent.phoneCodeHash });
      cache!.login_state = state;
      await persistLoginState(state);
      const { phoneCodeHash: _hash, ...out } = sent;
      return out;
    },
    signIn: async (code) => {
      try {
        const result = await signIn(code);
        if (result.result === 'ok') await forgetLoginState();
        return result;
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'TG_CODE_EXPIRED')) throw err;
        // A code is used up once it signed in: a retry of a signIn whose answer was lost (a drop
        // or timeout after Telegram authorised the key), or one after a restart that already
        // forgot the login state, lands here although the key IS logged in. One users.getUsers,
        // only on this path, tells.
        const profile = await step((c) => c.profileIfAuthorized());
        if (!profile) throw err;
        await forgetLoginState();
        return { result: 'ok', profile };
      }
    },
    checkPassword: async () => {
      if (password === undefined) throw new AppError('INVALID_STATE', 'send the password again');
      const pw = password;
      const profile = await step((c) => c.checkPassword(pw));
      await forgetLoginState();
      return { profile };
    },
    recoverPassword: async () => {
      if (recovery === undefined) throw new AppError('INVALID_STATE', 'send the recovery code again');
      const { code, newPassword } = recovery;
      const profile = await step((c) => c.recoverPassword(code, newPassword));
      await forgetLoginState();
      return { profile };
    },
    exportQr: () => step(async (c) => {
      const res = await c.exportQr();
      if (res.result !== 'migrate') return res;
      // Accepted by an account of another DC: import the token there (its key signs in).
      return (await moveTo(res.dc)).importQr(res.token);
    }),
    logOut: () => logOut(),
    watch: (sendBack) => {
      watcher = sendBack;
      const period = opts.heartbeatMs ?? 60_000;
      // Without stateCheckMs, every beat carries getState (as before pings and beats were split).
      const stateEvery = opts.stateCheckMs ?? period;
      let lastState = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const beat = () => {
        timer = setTimeout(async () => {
          // No ping once the lease is gone: it would keep this socket open past the taker's grace.
          if (ctx.runsHere && !ctx.runsHere()) return;
          try {
            const state = Date.now() - lastState >= stateEvery * 0.9;
            if (state) lastState = Date.now();
            if (client && !dropped && !(await client.keepalive(state))) return sendBack({ type: 'REVOKED' });
          } catch {
            if (!dropped) {
              dropped = true;
              await discard();
              return sendBack({ type: 'CONNECTION_DROPPED' });
            }
          }
          beat();
        }, period * (0.9 + Math.random() * 0.2));
        timer.unref();
      };
      beat();
      return () => {
        clearTimeout(timer);
        if (watcher === sendBack) watcher = undefined;
      };
    },
  };

  const persistLoginState = async (state: string) => {
    let tries = 0;
    try {
      await retryFor(opts.loginStateSaveMs ?? SAVE_BUDGET_MS, () => ctx.secrets.save('login_state', state), {
        // A newer code replaced this state, or the login finished and forgot it: stop writing it.
        onError: (_err, n) => { tries = n; return cache?.login_state === state; },
      });
    } catch (err) {
      if (cache?.login_state !== state) return;
      ctx.logger.warn('login state not saved after the code was sent; kept in memory, a restart before sign-in needs a new code', {
        connectionId: ctx.connectionId, tries, errorCode: errorCode(err),
      });
    }
  };

  const signIn = async (code: string): Promise<SignInOutput> => {
    const s = await secrets();
    if (!s.phone || !s.login_state) throw tgError('TG_CODE_EXPIRED', 'no login code was requested; reconnect to get a new one');
    const { phoneCodeHash } = JSON.parse(s.login_state) as { phoneCodeHash: string };
    return step((c) => c.signIn(s.phone!, phoneCodeHash, code));
  };

  // After a successful signIn/checkPassword the account IS authorised: failing the slot now would
  // make the machine retry signIn with a login state already forgotten (TG_CODE_EXPIRED) and leave
  // an authorised account in awaiting-code. Deleting the used hash is housekeeping: a row left by
  // an outage is retried by the next connect that finds the account authorised.
  const forgetLoginState = async () => {
    if (cache?.login_state === undefined) return;
    delete cache.login_state;
    try {
      await ctx.secrets.remove('login_state');
    } catch (err) {
      ctx.logger.warn('used login state not deleted; the next connect retries', { connectionId: ctx.connectionId, errorCode: errorCode(err) });
    }
  };

  const logOut = async () => {
    const s = await secrets();
    if (!s.session) return;
    const c = client && !dropped ? client : await open();
    try {
      await c.logOut();
    } catch (err) {
      // Already logged out or revoked: the goal is reached.
      if (!(err instanceof AppError && err.code === 'TG_SESSION_EXPIRED')) throw err;
    } finally {
      await discard();
    }
  };

  return {
    slots: impl as unknown as Driver['slots'],
    holdSecret(name, value) {
      if (name === 'recovery') recovery = value === undefined ? undefined : JSON.parse(value) as { code: string; newPassword?: string };
      else password = value;
    },
    passwordRecovery: () => step((c) => c.requestPasswordRecovery()).then((emailPattern) => ({ emailPattern })),
    async send(msg) {
      // Markup first: a message Telegram could never show fails before any round trip.
      const { text, entities } = formatText(msg.text, msg.parseMode);
      const c = live();
      const peer = await resolvePeer(c, msg.chat);
      const opts = { silent: msg.silent, entities, ...(msg.replyTo ? { replyTo: Number(msg.replyTo) } : {}) };
      // random_id from our message id: Telegram drops a resend after a crash as a duplicate.
      const id = msg.media
        ? await c.sendMedia(peer, msg.media, text, randomIdFor(msg.id), fileIdFor(msg.id), opts)
        : await c.sendMessage(peer, text, randomIdFor(msg.id), opts);
      return { platformMessageId: id };
    },
    // Both repeat harmlessly: an edit to the text the message has answers MESSAGE_NOT_MODIFIED (taken
    // as done), a delete of a message already gone deletes nothing.
    async operate(op) {
      const c = live();
      const peer = await resolvePeer(c, op.chat);
      const id = Number(op.platformMessageId);
      if (op.type === 'delete') return c.deleteMessage(peer, id);
      const { text, entities } = formatText(op.text, op.parseMode);
      await c.editMessage(peer, id, text, entities);
    },
    async checkChat(ref, opts) {
      return requireAdmin(await checkAccountChat(live(), ref), opts);
    },
    received(update) {
      return toReceived(update);
    },
    bytes: () => (client?.accountedBytes() ?? 0) + (cache?.session?.length ?? 0),
    trim: () => client?.trim(),
    logOut,
    async dispose() {
      watcher = undefined;
      generation++;
      await opening;
      await discard();
    },
  };
}

const peerId = (peer: Api.TypePeer | undefined): string => {
  if (peer instanceof Api.PeerUser) return String(peer.userId);
  if (peer instanceof Api.PeerChat) return `-${peer.chatId}`;
  if (peer instanceof Api.PeerChannel) return `-100${peer.channelId}`;
  return '';
};

function toReceived(update: unknown): ReceivedMessage | null {
  const date = (d: number) => new Date(d * 1000).toISOString();
  if (update instanceof Api.UpdateShortMessage) {
    return { chat: String(update.userId), from: String(update.userId), text: update.message, platformMessageId: String(update.id), date: date(update.date) };
  }
  if (update instanceof Api.UpdateShortChatMessage) {
    return { chat: `-${update.chatId}`, from: String(update.fromId), text: update.message, platformMessageId: String(update.id), date: date(update.date) };
  }
  if ((update instanceof Api.UpdateNewMessage || update instanceof Api.UpdateNewChannelMessage) && update.message instanceof Api.Message) {
    const m = update.message;
    if (m.out) return null;
    const media = accountMedia(m.media);
    return { chat: peerId(m.peerId), from: peerId(m.fromId ?? m.peerId), text: m.message, platformMessageId: String(m.id), date: date(m.date), ...(media ? { media } : {}) };
  }
  return null;
}
