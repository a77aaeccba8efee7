import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { StringSession } from 'telegram/sessions/index.js';
import { igeDecrypt, igeEncrypt } from '../crypto/ige.ts';
import { keyIv } from '../mtproto/envelope.ts';
import { FullFrameDecoder, FullFrameEncoder } from '../mtproto/framing.ts';
import { ID, container, parseContainer, type OutMessage } from '../mtproto/tl.ts';

// A minimal MTProto 2.0 client for load generation: it encrypts pre-serialised requests with a
// saved session's key and matches rpc_results, nothing else (no updates, no entity cache). It lets
// a benchmark measure the DC's capacity where the real GramJS client (~0.8 ms CPU per call) would
// be the bottleneck. callBatch() packs several requests into one msg_container, as GramJS does with
// whatever is queued, so one packet (one encryption, one syscall each way) carries many calls.
// Never used to prove protocol behaviour: the acceptance tests use GramJS.

const BAD_SERVER_SALT = 0xedab447b;
const NEW_SESSION = 0x9ec20908;

interface Pending { body: Buffer; resolve: (result: Buffer) => void; reject: (e: Error) => void }

export class RawClient {
  private readonly socket: Socket;
  private readonly key: Buffer;
  private readonly keyId: bigint;
  private readonly encoder = new FullFrameEncoder();
  private readonly decoder = new FullFrameDecoder();
  private readonly sessionId = randomBytes(8).readBigInt64LE(0);
  private readonly pending = new Map<bigint, Pending>();
  /**
   * Container msg_id → its requests' msg_ids, to resend them if the server refuses the container's
   * salt. Kept only until the salt is confirmed (the emulator's salt never changes for a key).
   */
  private readonly containers = new Map<bigint, bigint[]>();
  private salt = 0n;
  private saltConfirmed = false;
  private seq = 0;
  private lastMsgId = 0n;
  /** A transport error the server sent instead of a message (-404: it does not know the key). */
  transportError?: number;
  /** Settles when the server (or close()) ends the connection. */
  readonly closed: Promise<void>;

  private constructor(socket: Socket, key: Buffer) {
    this.socket = socket;
    this.key = key;
    this.keyId = createHash('sha1').update(key).digest().readBigUInt64LE(12);
    socket.on('data', (d) => {
      for (const frame of this.decoder.push(d)) this.onFrame(frame);
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
    });
  }

  static async open(session: string, host: string, port: number): Promise<RawClient> {
    const s = new StringSession(session);
    await s.load();
    const key = s.getAuthKey()!.getKey()!;
    const socket = connect(port, host);
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket, key);
  }

  /** Sends a serialised request and resolves with the rpc_result body (rpc_error included, unparsed). */
  call(body: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.pending.set(this.write([body])[0]!, { body, resolve, reject });
    });
  }

  /** Sends the requests in one msg_container; resolves with their rpc_result bodies in request order. */
  callBatch(bodies: Buffer[]): Promise<Buffer[]> {
    if (bodies.length === 1) return this.call(bodies[0]!).then((r) => [r]);
    return new Promise((resolve, reject) => {
      const results: Buffer[] = new Array(bodies.length);
      let left = bodies.length;
      let failed = false;
      const ids = this.write(bodies);
      ids.forEach((id, i) => this.pending.set(id, {
        body: bodies[i]!,
        resolve: (r) => {
          results[i] = r;
          if (--left === 0) resolve(results);
        },
        reject: (e) => {
          if (!failed) reject(e);
          failed = true;
        },
      }));
    });
  }

  /** Sends a serialised message that has no rpc_result (ping_delay_disconnect answers a pong). */
  send(body: Buffer): void {
    this.write([body]);
  }

  close(): void {
    this.socket.destroy();
  }

  private msgId(): bigint {
    const now = BigInt(Date.now());
    let msgId = ((now / 1000n) << 32n) | ((((now % 1000n) << 32n) / 1000n) & ~3n);
    if (msgId <= this.lastMsgId) msgId = this.lastMsgId + 4n;
    this.lastMsgId = msgId;
    return msgId;
  }

  /** Encrypts and sends one message, or a container of several; returns the requests' msg_ids. */
  private write(bodies: Buffer[]): bigint[] {
    const inner: OutMessage[] = bodies.map((body) => ({ msgId: this.msgId(), seqNo: this.seq++ * 2 + 1, body }));
    // A container takes a msg_id above its messages' and an even seq_no (it is not content-related itself).
    const outer = inner.length === 1 ? inner[0]! : { msgId: this.msgId(), seqNo: this.seq * 2, body: container(inner) };
    if (inner.length > 1 && !this.saltConfirmed) this.containers.set(outer.msgId, inner.map((m) => m.msgId));
    const body = outer.body;
    const len = 32 + body.length;
    const plain = Buffer.alloc(len + 12 + ((16 - ((len + 12) % 16)) % 16));
    plain.writeBigInt64LE(this.salt, 0);
    plain.writeBigInt64LE(this.sessionId, 8);
    plain.writeBigInt64LE(outer.msgId, 16);
    plain.writeInt32LE(outer.seqNo, 24);
    plain.writeInt32LE(body.length, 28);
    body.copy(plain, 32);
    const msgKey = createHash('sha256').update(this.key.subarray(88, 120)).update(plain).digest().subarray(8, 24);
    const { key, iv } = keyIv(this.key, msgKey, 0);
    const packet = Buffer.allocUnsafe(24 + plain.length);
    packet.writeBigUInt64LE(this.keyId, 0);
    msgKey.copy(packet, 8);
    igeEncrypt(plain, key, iv).copy(packet, 24);
    this.socket.write(this.encoder.encode(packet));
    return inner.map((m) => m.msgId);
  }

  private onFrame(frame: Buffer): void {
    if (frame.length === 4) this.transportError = frame.readInt32LE(0);
    if (frame.length < 24) return;
    const msgKey = frame.subarray(8, 24);
    const { key, iv } = keyIv(this.key, msgKey, 8);
    const plain = igeDecrypt(frame.subarray(24), key, iv);
    this.onMessage(plain.subarray(32, 32 + plain.readInt32LE(28)));
  }

  private onMessage(body: Buffer): void {
    switch (body.readUInt32LE(0)) {
      case ID.msgContainer:
        for (const m of parseContainer(body)) this.onMessage(m.body);
        return;
      case NEW_SESSION:
        this.salt = body.readBigInt64LE(20);
        return;
      case BAD_SERVER_SALT: {
        this.salt = body.readBigInt64LE(20);
        const badId = body.readBigInt64LE(4);
        const ids = this.containers.get(badId) ?? [badId];
        this.containers.delete(badId);
        const resend = ids.map((id) => this.pending.get(id)).filter((p) => p !== undefined);
        for (const id of ids) this.pending.delete(id);
        if (resend.length === 0) return;
        this.write(resend.map((p) => p.body)).forEach((id, i) => this.pending.set(id, resend[i]!));
        return;
      }
      case ID.rpcResult: {
        if (!this.saltConfirmed) {
          this.saltConfirmed = true;
          this.containers.clear();
        }
        const reqId = body.readBigInt64LE(4);
        const p = this.pending.get(reqId);
        this.pending.delete(reqId);
        p?.resolve(body.subarray(12));
      }
    }
  }
}
