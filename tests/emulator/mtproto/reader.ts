import { helpers } from 'telegram';
import { BinaryReader } from 'telegram/extensions/index.js';

// GramJS's BinaryReader reads every long through a hex string and big-integer's base-16 parser
// (~40 µs each; a sendMessage carries three). The server's own reader takes longs straight from the
// buffer; GramJS's generated fromReader() methods call back into whichever reader they are given,
// so nested objects benefit too. Same values, same types (big-integer), only faster.

export class ServerReader extends BinaryReader {
  override readLong(signed = true): ReturnType<BinaryReader['readLong']> {
    const self = this as unknown as { stream: Buffer; offset: number };
    const v = signed ? self.stream.readBigInt64LE(self.offset) : self.stream.readBigUInt64LE(self.offset);
    self.offset += 8;
    return helpers.returnBigInt(v);
  }
}
