import { createHash } from 'node:crypto';
import { TgError } from './types.ts';

// Files uploaded over MTProto in parts (core.telegram.org/api/files): upload.saveFilePart for files
// up to 10 MB, upload.saveBigFilePart (with file_total_parts) above; parts of one size, a divisor of
// 512 KiB and a multiple of 1 KiB, except a shorter last part; at most 4000 parts. Parts wait here,
// keyed by the uploading account and its file_id, until a messages.sendMedia takes the file; the
// emulator then keeps only the file's size and SHA-256.

const PART_MAX = 512 * 1024;
const SMALL_FILE_MAX = 10 * 1024 * 1024;
const MAX_PARTS = 4000;

interface Pending { big: boolean; totalParts?: number; parts: Map<number, Buffer>; bytes: number; touched: number }

export interface AssembledFile { size: number; sha256: string }

export class FileParts {
  private readonly files = new Map<string, Pending>();
  private bytes = 0;

  /** capBytes: parts held at once; the least recently touched files are forgotten past it (Telegram expires unused parts too). */
  constructor(private readonly capBytes = 1024 * 1024 * 1024) {}

  save(owner: number, fileId: bigint, part: number, data: Buffer, big: boolean, totalParts?: number): void {
    if (!Number.isInteger(part) || part < 0 || part >= MAX_PARTS) throw new TgError(400, 'FILE_PART_INVALID');
    if (data.length === 0) throw new TgError(400, 'FILE_PART_EMPTY');
    if (data.length > PART_MAX) throw new TgError(400, 'FILE_PART_TOO_BIG');
    if (big && (totalParts === undefined || totalParts < 1 || totalParts > MAX_PARTS || part >= totalParts)) throw new TgError(400, 'FILE_PARTS_INVALID');
    const key = `${owner}:${fileId}`;
    let f = this.files.get(key);
    if (!f || f.big !== big) {
      if (f) this.forget(key);
      f = { big, ...(totalParts !== undefined ? { totalParts } : {}), parts: new Map(), bytes: 0, touched: Date.now() };
      this.files.set(key, f);
    }
    if (big && f.totalParts !== totalParts) throw new TgError(400, 'FILE_PARTS_INVALID');
    const old = f.parts.get(part);
    f.bytes += data.length - (old?.length ?? 0);
    this.bytes += data.length - (old?.length ?? 0);
    // A copy: the request buffer belongs to the decrypted packet.
    f.parts.set(part, Buffer.from(data));
    f.touched = Date.now();
    if (!big && f.bytes > SMALL_FILE_MAX) {
      this.forget(key);
      throw new TgError(400, 'FILE_PART_SIZE_INVALID');
    }
    this.evict(key);
  }

  /**
   * The file InputFile / InputFileBig names, checked as Telegram checks it: every part there, one part
   * size, md5 when given. Parts stay until drop(): a send that fails after this can be retried.
   */
  assemble(owner: number, fileId: bigint, parts: number, big: boolean, md5?: string): AssembledFile {
    const f = this.files.get(`${owner}:${fileId}`);
    if (!f || f.big !== big) throw new TgError(400, 'FILE_PART_0_MISSING');
    if (parts < 1 || parts > MAX_PARTS || (big && parts !== f.totalParts)) throw new TgError(400, 'FILE_PARTS_INVALID');
    const size0 = f.parts.get(0)?.length;
    const hash = createHash('sha256');
    const md5sum = md5 ? createHash('md5') : undefined;
    let size = 0;
    for (let i = 0; i < parts; i++) {
      const p = f.parts.get(i);
      if (!p) throw new TgError(400, `FILE_PART_${i}_MISSING`);
      const last = i === parts - 1;
      if (!last && (p.length !== size0 || p.length % 1024 !== 0 || PART_MAX % p.length !== 0)) throw new TgError(400, 'FILE_PART_SIZE_INVALID');
      if (last && parts > 1 && p.length > size0!) throw new TgError(400, 'FILE_PART_SIZE_INVALID');
      hash.update(p);
      md5sum?.update(p);
      size += p.length;
    }
    if (f.parts.size > parts) throw new TgError(400, 'FILE_PARTS_INVALID');
    if (md5sum && md5sum.digest('hex') !== md5!.toLowerCase()) throw new TgError(400, 'MD5_CHECKSUM_INVALID');
    return { size, sha256: hash.digest('hex') };
  }

  drop(owner: number, fileId: bigint): void {
    this.forget(`${owner}:${fileId}`);
  }

  clear(): void {
    this.files.clear();
    this.bytes = 0;
  }

  private forget(key: string): void {
    const f = this.files.get(key);
    if (!f) return;
    this.bytes -= f.bytes;
    this.files.delete(key);
  }

  private evict(keep: string): void {
    if (this.bytes <= this.capBytes) return;
    const byAge = [...this.files.entries()].filter(([k]) => k !== keep).sort((a, b) => a[1].touched - b[1].touched);
    for (const [k] of byAge) {
      if (this.bytes <= this.capBytes) return;
      this.forget(k);
    }
  }
}
