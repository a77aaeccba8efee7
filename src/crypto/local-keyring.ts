// Local keyring: versioned AES-256-GCM with node:crypto, used when no Vault is configured.
// Ciphertext: local:v<N>:base64(nonce 12 ‖ ciphertext ‖ tag 16), AAD = context.
//
// Where the data keys come from (two modes, chosen by configuration):
// - file mode (KEYRING_FILE, or the default data/keyring.json): each version's data key is 32 random bytes,
//   stored in the file wrapped (AES-256-GCM) by the master key. The master is KEYRING_KEY when set, else one
//   generated on first start and kept in the same 0600 file. rotate() and rotateIfDue() add versions.
// - derived mode (KEYRING_KEY without a file, e.g. a read-only container): data key of version N =
//   HKDF-SHA256(master, version N), and the newest version follows the calendar (one every rotateDays from
//   2026-01-01T00:00Z), so every replica agrees without shared state. rotate() on demand needs a file and
//   is refused. A leaked master exposes every version in both modes; rotation limits a leaked data key.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { KeyringError, type Keyring } from './keyring.ts';
import { assertPrivate, createKeyringFile, readKeyringFile, updateKeyringFile, type KeyringFileData } from './keyring-file.ts';

export interface LocalKeyringOptions {
  masterKey?: string | Buffer; // KEYRING_KEY: base64 of 32 bytes, or the 32 bytes themselves
  file?: string; // KEYRING_FILE
  rotateDays?: number; // default 7
  now?: () => number;
}

const internals = {
  nonceBytes: 12,
  tagBytes: 16,
  keyBytes: 32,
  dayMs: 86_400_000,
  calendarEpoch: Date.UTC(2026, 0, 1),
  hkdfSalt: Buffer.from('integration-service/local-keyring'),
  pattern: /^local:v(\d{1,9}):([A-Za-z0-9+/]+={0,2})$/,

  seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
    const nonce = randomBytes(internals.nonceBytes);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  },

  // Throws on any authentication failure; callers turn that into a message without data in it.
  open(key: Buffer, sealed: Buffer, aad: string): Buffer {
    if (sealed.length < internals.nonceBytes + internals.tagBytes) throw new Error('too short');
    const nonce = sealed.subarray(0, internals.nonceBytes);
    const tag = sealed.subarray(sealed.length - internals.tagBytes);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed.subarray(internals.nonceBytes, sealed.length - internals.tagBytes)), decipher.final()]);
  },

  parseMaster(value: string | Buffer, source: string): Buffer {
    if (Buffer.isBuffer(value)) {
      if (value.length !== internals.keyBytes) throw new KeyringError('config', `${source} must be exactly 32 bytes (got ${value.length})`);
      return Buffer.from(value);
    }
    const b64 = value;
    const key = Buffer.from(b64, 'base64');
    if (key.length !== internals.keyBytes || key.toString('base64').replace(/=+$/, '') !== b64.trim().replace(/=+$/, '')) {
      throw new KeyringError('config', `${source} must be base64 of exactly 32 bytes (decoded ${key.length} bytes)`);
    }
    return key;
  },
};

export class LocalKeyring implements Keyring {
  readonly mode: 'file' | 'derived';
  private readonly keys = new Map<number, Buffer>();
  private newest = { version: 0, createdAt: 0 };
  private readonly periodMs: number;

  private constructor(
    private readonly master: Buffer,
    private readonly file: string | undefined,
    rotateDays: number,
    private readonly now: () => number,
  ) {
    this.mode = file ? 'file' : 'derived';
    this.periodMs = rotateDays * internals.dayMs;
  }

  static async open(opts: LocalKeyringOptions): Promise<LocalKeyring> {
    const rotateDays = opts.rotateDays ?? 7;
    if (!(rotateDays > 0)) throw new KeyringError('config', `rotateDays must be positive (got ${rotateDays})`);
    const now = opts.now ?? Date.now;
    const envMaster = opts.masterKey ? internals.parseMaster(opts.masterKey, 'KEYRING_KEY') : undefined;
    if (!opts.file) {
      if (!envMaster) throw new KeyringError('config', 'the local keyring needs KEYRING_KEY or KEYRING_FILE');
      const ring = new LocalKeyring(envMaster, undefined, rotateDays, now);
      ring.followCalendar(now());
      return ring;
    }
    let data = await readKeyringFile(opts.file);
    if (!data) {
      const master = envMaster ?? randomBytes(internals.keyBytes);
      const fresh: KeyringFileData = { format: 1, versions: [] };
      if (!envMaster) fresh.master = master.toString('base64');
      fresh.versions.push(LocalKeyring.newVersion(master, 1, now()));
      data = await createKeyringFile(opts.file, fresh);
    }
    if (data.master && envMaster) {
      throw new KeyringError('config', `keyring file ${opts.file} holds its own generated master key; unset KEYRING_KEY or point KEYRING_FILE elsewhere`);
    }
    const master = envMaster ?? (data.master ? internals.parseMaster(data.master, `master key in ${opts.file}`) : undefined);
    if (!master) throw new KeyringError('config', `keyring file ${opts.file} has no master key in it: set KEYRING_KEY`);
    const ring = new LocalKeyring(master, opts.file, rotateDays, now);
    ring.load(data);
    return ring;
  }

  get currentVersion(): number {
    return this.newest.version;
  }

  async encrypt(plaintext: string, context = ''): Promise<string> {
    const v = this.newest.version;
    const sealed = internals.seal(await this.keyFor(v), Buffer.from(plaintext, 'utf8'), context);
    return `local:v${v}:${sealed.toString('base64')}`;
  }

  async decrypt(ciphertext: string, context = ''): Promise<string> {
    const { version, body } = this.parse(ciphertext);
    const key = await this.keyFor(version);
    try {
      return internals.open(key, Buffer.from(body, 'base64'), context).toString('utf8');
    } catch {
      throw new KeyringError('authentication', `cannot decrypt a local:v${version} ciphertext: authentication failed (wrong context, tampered or truncated data, or another keyring)`);
    }
  }

  async rotate(): Promise<number> {
    if (!this.file) {
      throw new KeyringError('config', 'derived keyring (KEYRING_KEY without KEYRING_FILE) rotates by calendar only; set KEYRING_FILE to rotate on demand');
    }
    const at = this.now();
    const data = await updateKeyringFile(this.file, (current) => {
      const next = Math.max(...current.versions.map((v) => v.version)) + 1;
      return { ...current, versions: [...current.versions, LocalKeyring.newVersion(this.master, next, at)] };
    });
    this.load(data);
    return this.newest.version;
  }

  async rotateIfDue(now = new Date(this.now())): Promise<number | null> {
    const at = now.getTime();
    if (!this.file) return this.followCalendar(at);
    if (at - this.newest.createdAt < this.periodMs) return null;
    const before = this.newest.version;
    // Re-checked under the lock: another process may have rotated since we loaded the file.
    const data = await updateKeyringFile(this.file, (current) => {
      const newest = current.versions.reduce((a, b) => (b.version > a.version ? b : a));
      if (at - Date.parse(newest.createdAt) < this.periodMs) return null;
      return { ...current, versions: [...current.versions, LocalKeyring.newVersion(this.master, newest.version + 1, at)] };
    });
    this.load(data);
    return this.newest.version > before ? this.newest.version : null;
  }

  async rewrap(ciphertext: string, context = ''): Promise<string> {
    if (!this.needsRewrap(ciphertext)) {
      await this.decrypt(ciphertext, context); // still proves the ciphertext belongs to this row
      return ciphertext;
    }
    return this.encrypt(await this.decrypt(ciphertext, context), context);
  }

  needsRewrap(ciphertext: string): boolean {
    return this.parse(ciphertext).version < this.newest.version;
  }

  async ping(): Promise<void> {
    if (this.file) await assertPrivate(this.file);
  }

  async close(): Promise<void> {
    this.keys.clear();
  }

  private static newVersion(master: Buffer, version: number, at: number) {
    const sealed = internals.seal(master, randomBytes(internals.keyBytes), `keyring-file:v${version}`);
    return { version, createdAt: new Date(at).toISOString(), key: sealed.toString('base64') };
  }

  private load(data: KeyringFileData): void {
    for (const rec of data.versions) {
      if (this.keys.has(rec.version)) continue;
      try {
        this.keys.set(rec.version, internals.open(this.master, Buffer.from(rec.key, 'base64'), `keyring-file:v${rec.version}`));
      } catch {
        throw new KeyringError('config', `the master key does not open version ${rec.version} of keyring file ${this.file} (wrong KEYRING_KEY?)`);
      }
      const createdAt = Date.parse(rec.createdAt);
      if (rec.version > this.newest.version) this.newest = { version: rec.version, createdAt };
    }
  }

  private followCalendar(at: number): number | null {
    const version = Math.max(1, 1 + Math.floor((at - internals.calendarEpoch) / this.periodMs));
    if (version <= this.newest.version) return null;
    this.newest = { version, createdAt: internals.calendarEpoch + (version - 1) * this.periodMs };
    return version;
  }

  private async keyFor(version: number): Promise<Buffer> {
    if (!this.file) {
      let key = this.keys.get(version);
      if (!key) {
        key = Buffer.from(hkdfSync('sha256', this.master, internals.hkdfSalt, `local:v${version}`, internals.keyBytes));
        this.keys.set(version, key);
      }
      return key;
    }
    if (!this.keys.has(version)) {
      // Another process may have rotated since we loaded the file.
      const data = await readKeyringFile(this.file);
      if (data) this.load(data);
    }
    const key = this.keys.get(version);
    if (!key) throw new KeyringError('unknown-version', `key version ${version} is not in keyring file ${this.file}`);
    return key;
  }

  private parse(ciphertext: string): { version: number; body: string } {
    const m = internals.pattern.exec(ciphertext);
    if (!m) throw new KeyringError('malformed', 'not a local keyring ciphertext (expected local:v<N>:<base64>)');
    return { version: Number(m[1]), body: m[2]! };
  }
}
