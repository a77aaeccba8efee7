import { crc32 } from 'node:zlib';

// MTProto "TCP full" transport (GramJS's default ConnectionTCPFull): every packet is
// len:int32 (whole packet, 12 + payload) | seq:int32 | payload | crc32(len|seq|payload), little-endian,
// with seq counting from 0 separately in each direction.

// Telegram caps a packet at about 1 MiB of payload (MessageContainer.MAXIMUM_SIZE in GramJS); a
// larger length is garbage or abuse, not a message.
const MAX_PACKET = 2 * 1024 * 1024;

export class FullFrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private expectedSeq = 0;

  /** Feeds socket bytes; returns the complete payloads. Throws on a broken frame (close the socket). */
  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    while (this.pendingBytes >= 4) {
      const first = this.pending[0]!;
      const len = (first.length >= 4 ? first : this.flatten()).readInt32LE(0);
      if (len < 12 || len > MAX_PACKET) throw new Error(`bad TCP full packet length ${len}`);
      // Joined only once complete: a 512 KiB file part arrives in ~8 socket reads, and joining at
      // each read copied it 8 times over.
      if (this.pendingBytes < len) break;
      const head = this.pending.length === 1 ? this.pending[0]! : this.flatten();
      const packet = head.subarray(0, len);
      const crc = packet.readUInt32LE(len - 4);
      if (crc32(packet.subarray(0, len - 4)) !== crc) throw new Error('bad TCP full checksum');
      const seq = packet.readInt32LE(4);
      if (seq !== this.expectedSeq) throw new Error(`bad TCP full seq ${seq}, expected ${this.expectedSeq}`);
      this.expectedSeq++;
      out.push(packet.subarray(8, len - 4));
      const rest = head.subarray(len);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
    }
    return out;
  }

  private flatten(): Buffer {
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [all];
    return all;
  }
}

export class FullFrameEncoder {
  private seq = 0;

  encode(payload: Buffer): Buffer {
    const len = payload.length + 12;
    const packet = Buffer.allocUnsafe(len);
    packet.writeInt32LE(len, 0);
    packet.writeInt32LE(this.seq++, 4);
    payload.copy(packet, 8);
    packet.writeUInt32LE(crc32(packet.subarray(0, len - 4)), len - 4);
    return packet;
  }
}
