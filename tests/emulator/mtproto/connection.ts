import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Api } from 'telegram';
import { ServerReader } from './reader.ts';
import { TgError, type AuthKeyRec, type UserRec } from '../world/types.ts';
import type { World } from '../world/world.ts';
import { decryptFromClient, encryptForClient, serverMsgId } from './envelope.ts';
import { FullFrameDecoder, FullFrameEncoder } from './framing.ts';
import { Handshake } from './handshake.ts';
import { anyDcMethods, methods, publicMethods, type MethodContext } from './methods/index.ts';
import type { MtprotoServer } from './server.ts';
import { ID, big, container, native, parseContainer, rpcError, rpcResult, serialiseAnswer, unpackGzip, type OutMessage } from './tl.ts';

// One client TCP connection: TCP-full framing, the plain DH handshake, then MTProto 2.0 sessions
// (salts, new_session_created, containers, gzip, acks, pings) and RPC dispatch. Packets are
// handled strictly in arrival order through one promise chain, so answers keep request order
// even when a latency fault delays them.

// Telegram rejects msg_ids more than 300 s in the past or 30 s in the future (bad_msg_notification 16/17).
const MSG_ID_PAST_S = 300;
const MSG_ID_FUTURE_S = 30;

const wrappers = [Api.InvokeWithLayer, Api.InitConnection, Api.InvokeWithoutUpdates, Api.InvokeAfterMsg, Api.InvokeAfterMsgs];

function isWrapper(request: unknown): request is { query: unknown } {
  for (const w of wrappers) if (request instanceof w) return true;
  return false;
}

/**
 * What a handler sees. A class rather than an object literal with a closure: tsx keeps function
 * names by wrapping every closure it creates (__name), a measurable cost on the per-request path.
 */
class Context implements MethodContext {
  constructor(readonly world: World, readonly authKey: AuthKeyRec, readonly dc: { id: number; host: string; port: number }) {}
  user(): UserRec {
    return this.world.userOn(this.authKey, this.dc.id);
  }
  authorised(): UserRec {
    return this.world.requireUser(this.authKey);
  }
}

/**
 * pong#347773c5 msg_id:long ping_id:long, by hand: every GramJS client pings every 9 s, and
 * GramJS's getBytes() writes longs through eight big-integer shifts each.
 */
function pong(msgId: bigint, pingId: bigint): Buffer {
  const b = Buffer.allocUnsafe(20);
  b.writeUInt32LE(Api.Pong.CONSTRUCTOR_ID, 0);
  b.writeBigInt64LE(msgId, 4);
  b.writeBigInt64LE(BigInt.asIntN(64, pingId), 12);
  return b;
}

export class MtprotoConnection {
  authKey?: AuthKeyRec;
  sessionId?: bigint;
  /** Second live connection of an auth key: every RPC answers AUTH_KEY_DUPLICATED. */
  duplicate = false;
  indexedUser?: number;
  private readonly decoder = new FullFrameDecoder();
  private readonly encoder = new FullFrameEncoder();
  private handshake?: Handshake;
  private seq = 0;
  private chain: Promise<void> = Promise.resolve();
  private pingTimer?: NodeJS.Timeout;
  private readonly aborter = new AbortController();
  private closed = false;

  constructor(readonly socket: Socket, private readonly server: MtprotoServer) {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => this.close());
    // The client's FIN ends the connection: no MTProto client half-closes, and 'close' comes only once
    // this side's pending writes are out, a loop turn or more later on a busy emulator. Meanwhile the
    // key counted as live, and a new owner connecting with it (a shard taken over) was answered
    // AUTH_KEY_DUPLICATED (tests/cluster/rolling.e2e.test.ts, once, on a loaded 2-core machine).
    socket.on('end', () => this.close());
    socket.on('close', () => this.close());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pingTimer);
    this.aborter.abort();
    this.socket.destroy();
    this.server.detach(this);
  }

  private onData(chunk: Buffer): void {
    let packets: Buffer[];
    try {
      packets = this.decoder.push(chunk);
    } catch {
      this.close();
      return;
    }
    for (const packet of packets) {
      this.chain = this.chain.then(() => this.onPacket(packet)).catch((err: unknown) => {
        if (!this.closed) process.stderr.write(`[emulator] mtproto connection failed: ${(err as Error).stack ?? String(err)}\n`);
        this.close();
      });
    }
  }

  private async onPacket(packet: Buffer): Promise<void> {
    if (this.closed || packet.length < 8) return;
    const keyId = packet.readBigUInt64LE(0);
    if (keyId === 0n) return this.onPlain(packet);
    const rec = this.server.world.authKeys.get(keyId);
    if (!rec || rec.dc !== this.server.dcId) {
      // Unknown key (or one another DC made): Telegram answers the transport error -404 and the client
      // treats its key as broken.
      const err = Buffer.alloc(4);
      err.writeInt32LE(-404, 0);
      this.socket.end(this.encoder.encode(err));
      return;
    }
    if (this.authKey !== rec) {
      if (this.authKey) this.server.detach(this);
      this.authKey = rec;
      this.server.attach(this);
    }
    if (this.server.world.faults.refuses(rec.userId)) return this.close();
    const msg = decryptFromClient(rec, packet);
    if (!msg) return this.close();
    const out: OutMessage[] = [];
    if (this.sessionId !== msg.sessionId) {
      this.sessionId = msg.sessionId;
      this.seq = 0;
    }
    const sentAt = Number(msg.msgId >> 32n);
    const now = Date.now() / 1000;
    const badMsg = msg.msgId % 4n !== 0n ? 18 : sentAt < now - MSG_ID_PAST_S ? 16 : sentAt > now + MSG_ID_FUTURE_S ? 17 : 0;
    if (badMsg) {
      out.push(this.message(new Api.BadMsgNotification({ badMsgId: big(msg.msgId), badMsgSeqno: msg.seqNo, errorCode: badMsg }).getBytes(), false, true));
    } else if (msg.salt !== rec.salt) {
      // GramJS starts every connection with salt 0 and learns the real one from this answer.
      out.push(this.message(new Api.BadServerSalt({
        badMsgId: big(msg.msgId), badMsgSeqno: msg.seqNo, errorCode: 48, newServerSalt: big(rec.salt),
      }).getBytes(), false, true));
    } else {
      if (!rec.sessions.has(msg.sessionId)) {
        rec.sessions.add(msg.sessionId);
        out.push(this.message(new Api.NewSessionCreated({
          firstMsgId: big(msg.msgId), uniqueId: big(randomBytes(8).readBigInt64LE(0)), serverSalt: big(rec.salt),
        }).getBytes(), true, false));
      }
      await this.dispatch(rec, msg.body, msg.msgId, out);
      this.server.index(this);
      const delay = this.server.world.faults.latencyMs(rec.userId);
      if (delay > 0) await sleep(delay, undefined, { signal: this.aborter.signal });
    }
    this.flush(out);
  }

  private onPlain(packet: Buffer): void {
    if (this.server.world.faults.refuses(undefined, true)) return this.close();
    const len = packet.readInt32LE(16);
    const request = new ServerReader(packet.subarray(20, 20 + len)).tgReadObject();
    const step = (this.handshake ??= new Handshake(this.server.serverKey)).handle(request);
    if ('error' in step) {
      process.stderr.write(`[emulator] handshake refused: ${step.error}\n`);
      return this.close();
    }
    if ('authKey' in step) this.server.newAuthKey(step.authKey);
    const body = step.reply.getBytes();
    const plain = Buffer.alloc(20 + body.length);
    plain.writeBigInt64LE(serverMsgId(true), 8);
    plain.writeInt32LE(body.length, 16);
    body.copy(plain, 20);
    this.socket.write(this.encoder.encode(plain));
  }

  private async dispatch(rec: AuthKeyRec, body: Buffer, msgId: bigint, out: OutMessage[]): Promise<void> {
    switch (body.readUInt32LE(0)) {
      case ID.msgContainer:
        for (const inner of parseContainer(body)) await this.dispatch(rec, inner.body, inner.msgId, out);
        return;
      case ID.gzipPacked:
        return this.dispatch(rec, unpackGzip(body), msgId, out);
      case ID.msgsAck:
        return;
      case ID.ping:
      case ID.pingDelayDisconnect: {
        const ping = new ServerReader(body).tgReadObject() as Api.Ping | Api.PingDelayDisconnect;
        if (ping instanceof Api.PingDelayDisconnect) this.armDisconnect(ping.disconnectDelay);
        out.push(this.message(pong(msgId, native(ping.pingId)), false, true));
        return;
      }
      default:
        out.push(this.message(await this.rpc(rec, body, msgId), true, true));
    }
  }

  private async rpc(rec: AuthKeyRec, body: Buffer, msgId: bigint): Promise<Buffer> {
    let name = `#${body.readUInt32LE(0).toString(16)}`;
    try {
      let request = new ServerReader(body).tgReadObject() as { className: string; query?: unknown };
      while (isWrapper(request)) request = request.query as typeof request;
      name = request.className;
      if (this.duplicate) throw new TgError(406, 'AUTH_KEY_DUPLICATED');
      if (rec.revoked) throw new TgError(401, 'AUTH_KEY_UNREGISTERED');
      const world = this.server.world;
      const migrateTo = world.faults.takeMigrate(rec.userId, name);
      if (migrateTo > 0) throw world.migrate('NETWORK', migrateTo);
      const method = methods[name];
      if (!method) {
        process.stderr.write(`[emulator] UNKNOWN MTProto method ${name}: answering 400 METHOD_NOT_IMPLEMENTED\n`);
        throw new TgError(400, 'METHOD_NOT_IMPLEMENTED');
      }
      const ctx = new Context(world, rec, this.server.dc);
      if (anyDcMethods.has(name)) ctx.authorised();
      else if (!publicMethods.has(name)) ctx.user();
      return rpcResult(msgId, serialiseAnswer(await method(ctx, request)));
    } catch (err) {
      if (err instanceof TgError) return rpcResult(msgId, rpcError(err.code, err.message));
      process.stderr.write(`[emulator] ${name} failed: ${(err as Error).stack ?? String(err)}\n`);
      return rpcResult(msgId, rpcError(500, 'INTERNAL'));
    }
  }

  private armDisconnect(seconds: number): void {
    clearTimeout(this.pingTimer);
    // GramJS passes 60000 (it means ms; the field is seconds): cap below setTimeout's 2^31 ms limit.
    this.pingTimer = setTimeout(() => this.close(), Math.min(seconds * 1000, 2 ** 31 - 1));
  }

  /** Wraps a body with msg_id and seq_no; content-related messages take odd seq_nos. */
  private message(body: Buffer, contentRelated: boolean, isAnswer: boolean): OutMessage {
    const seqNo = contentRelated ? this.seq++ * 2 + 1 : this.seq * 2;
    return { msgId: serverMsgId(isAnswer), seqNo, body };
  }

  /** Sends something the server originates (an update) on this connection's current session. */
  push(body: Buffer): void {
    if (this.closed || this.sessionId === undefined || this.duplicate) return;
    this.flush([this.message(body, true, false)]);
  }

  private flush(out: OutMessage[]): void {
    if (this.closed || out.length === 0 || !this.authKey || this.sessionId === undefined) return;
    const m = out.length === 1 ? out[0]! : { msgId: serverMsgId(false), seqNo: this.seq * 2, body: container(out) };
    this.socket.write(this.encoder.encode(encryptForClient(this.authKey, this.sessionId, m.msgId, m.seqNo, m.body)));
  }
}
