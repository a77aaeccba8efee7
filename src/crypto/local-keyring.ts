// Local keyring: versioned AES-256-GCM with node:crypto, used when no Vault is configured.
// Ciphertext: local:v<N>:base64(nonce 12 ‖ ciphertext ‖ tag 16), AAD = context.
//
// Where the data keys come from (three modes, chosen by configuration):
// - database mode (the daemon: a database is given): each version's data key is 32 random bytes, stored in
//   Postgres (keyring_versions, migration 013) wrapped by the master key, so every node started with the
//   same KEYRING_KEY decrypts every secret. The master is KEYRING_KEY, else the one generated into the
//   keyring file on a single node's first start. A keyring file of an earlier release (the versions in it)
//   is imported once, under an advisory lock, so nodes starting together end with one set of versions;
//   from then on the table is the truth and the file is only read (for its master, if it holds one).
// - file mode (no database given, KEYRING_FILE or the default data/keyring.json; the daemon before 013): each version's data key is 32 random bytes,
//   stored in the file wrapped (AES-256-GCM) by the master key. The master is KEYRING_KEY when set, else one
//   generated on first start and kept in the same 0600 file. rotate() and rotateIfDue() add versions.
// - derived mode (KEYRING_KEY without a file, e.g. a read-only container): data key of version N =
//   HKDF-SHA256(master, version N), and the newest version follows the calendar (one every rotateDays from
//   2026-01-01T00:00Z), so every replica agrees without shared state. rotate() on demand needs a file and
//   is refused. A leaked master exposes every version in every mode; rotation limits a leaked data key.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type postgres from 'postgres';
import { insertKeyVersion, keyVersions, localCiphertextsExist, lockKeyVersions, type KeyVersionRow } from '../store/keyring-versions.ts';
import { transaction } from '../store/transaction.ts';
import { KeyringError, type Keyring } from './port.ts';
import { assertPrivate, createKeyringFile, readKeyringFile, updateKeyringFile, type KeyringFileData, type KeyVersionRecord } from './keyring-file.ts';

export interface LocalKeyringOptions {
  masterKey?: string | Buffer; // KEYRING_KEY: base64 of 32 bytes, or the 32 bytes themselves
  file?: string; // KEYRING_FILE
  // Database mode: the key versions live in this database, shared by every node on it.
  sql?: postgres.Sql;
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
  // Database mode: how stale this node's view of the versions may get before an encryption triggers a
  // re-read, so another node's rotation is used for new secrets within about a minute.
  refreshMs: 60_000,
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
    if (key.length !== internals.keyBytes || key.toString('base64').replace(/(?<!=)=+$/, '') !== b64.trim().replace(/(?<!=)=+$/, '')) {
      throw new KeyringError('config', `${source} must be base64 of exactly 32 bytes (decoded ${key.length} bytes)`);
    }
    return key;
  },
};

export class LocalKeyring implements Keyring {
  readonly mode: 'database' | 'file' | 'derived';
  private readonly keys = new Map<number, Buffer>();
  private newest = { version: 0, createdAt: 0 };
  private readonly periodMs: number;
  private loadedAt = 0;
  private refreshing: Promise<void> | undefined;

  private constructor(
    private readonly master: Buffer,
    private readonly source: { sql: postgres.Sql; file?: string } | { file: string } | undefined,
    rotateDays: number,
    private readonly now: () => number,
  ) {
    this.mode = !source ? 'derived' : 'sql' in source ? 'database' : 'file';
    this.periodMs = rotateDays * internals.dayMs;
  }

  static async open(opts: LocalKeyringOptions): Promise<LocalKeyring> {
    const rotateDays = opts.rotateDays ?? 7;
    if (!(rotateDays > 0)) throw new KeyringError('config', `rotateDays must be positive (got ${rotateDays})`);
    const now = opts.now ?? Date.now;
    const envMaster = opts.masterKey ? internals.parseMaster(opts.masterKey, 'KEYRING_KEY') : undefined;
    if (opts.sql) return LocalKeyring.openShared(opts.sql, envMaster, opts.file, rotateDays, now);
    if (!opts.file) {
      if (!envMaster) throw new KeyringError('config', 'the local keyring needs KEYRING_KEY or KEYRING_FILE');
      const ring = new LocalKeyring(envMaster, undefined, rotateDays, now);
      ring.followCalendar(now());
      return ring;
    }
    let data = await readKeyringFile(opts.file);
    if (!data) data = await createKeyringFile(opts.file, LocalKeyring.freshFile(envMaster, now()));
    const master = LocalKeyring.masterOf(envMaster, data, opts.file);
    const ring = new LocalKeyring(master, { file: opts.file }, rotateDays, now);
    ring.load(data.versions, `keyring file ${opts.file}`);
    return ring;
  }

  // Database mode. The file, when there is one, supplies the master (if KEYRING_KEY is not set) and the
  // versions of an earlier release, imported once; it is never written again.
  private static async openShared(sql: postgres.Sql, envMaster: Buffer | undefined, file: string | undefined, rotateDays: number, now: () => number): Promise<LocalKeyring> {
    let data = file ? await readKeyringFile(file) : null;
    if (!data && !envMaster) {
      if (!file) throw new KeyringError('config', 'the local keyring needs KEYRING_KEY or KEYRING_FILE');
      // A node without KEYRING_KEY can only be the first and only one: its master is generated into the file.
      if ((await keyVersions(sql)).length > 0) {
        throw new KeyringError('config', `the keyring's versions in the database were made by another node: start this one with the same KEYRING_KEY (it has none, and no keyring file at ${file})`);
      }
      data = await createKeyringFile(file, LocalKeyring.freshFile(undefined, now()));
    }
    const master = LocalKeyring.masterOf(envMaster, data, file);
    // The file is checked by ping() only when there is one: with KEYRING_KEY it need not exist.
    const ring = new LocalKeyring(master, { sql, ...(data && file && { file }) }, rotateDays, now);
    // Opened before the transaction: a wrong master fails here with the file named, and the body of the
    // transaction below awaits only its own queries (src/store/transaction.ts).
    const imported = (data?.versions ?? []).map((rec) => ({ rec, key: ring.unwrap(rec, `keyring file ${file}`) }));
    const rows = await transaction(sql, async (tx) => {
      await lockKeyVersions(tx);
      const stored = await keyVersions(tx);
      const storedKeys = new Map(stored.map((row) => [row.version, ring.unwrap(LocalKeyring.record(row), 'the database (keyring_versions)')]));
      let added = false;
      for (const { rec, key } of imported) {
        const same = storedKeys.get(rec.version);
        if (same && !timingSafeEqual(same, key)) {
          throw new KeyringError('config', `keyring file ${file} holds a version ${rec.version} other than the one in the database: it belongs to another keyring; move it away if this node's secrets are the database's, or restore the database it belongs to`);
        }
        if (same) continue;
        await insertKeyVersion(tx, { version: rec.version, createdAt: new Date(rec.createdAt), wrappedKey: rec.key, source: 'imported' });
        added = true;
      }
      if (stored.length === 0 && imported.length === 0) {
        // Secrets made by a keyring whose file this node does not have: a fresh version 1 would shadow it.
        if (await localCiphertextsExist(tx)) {
          throw new KeyringError('config', 'the database holds secrets of a local keyring whose versions it does not have yet: start first the node that has the keyring file (KEYRING_FILE), which imports them');
        }
        const rec = LocalKeyring.newVersion(master, 1, now());
        await insertKeyVersion(tx, { version: 1, createdAt: new Date(rec.createdAt), wrappedKey: rec.key, source: 'created' });
        added = true;
      }
      return added ? keyVersions(tx) : stored;
    });
    ring.loadRows(rows);
    return ring;
  }

  get currentVersion(): number {
    return this.newest.version;
  }

  async encrypt(plaintext: string, context = ''): Promise<string> {
    this.refreshSoon();
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
    const at = this.now();
    if (this.source && 'sql' in this.source) {
      this.loadRows(await this.addVersion(at, () => true));
      return this.newest.version;
    }
    if (!this.source) {
      throw new KeyringError('config', 'derived keyring (KEYRING_KEY without KEYRING_FILE) rotates by calendar only; set KEYRING_FILE to rotate on demand');
    }
    const data = await updateKeyringFile(this.source.file, (current) => {
      const next = Math.max(...current.versions.map((v) => v.version)) + 1;
      return { ...current, versions: [...current.versions, LocalKeyring.newVersion(this.master, next, at)] };
    });
    this.load(data.versions, `keyring file ${this.source.file}`);
    return this.newest.version;
  }

  async rotateIfDue(now = new Date(this.now())): Promise<number | null> {
    const at = now.getTime();
    if (!this.source) return this.followCalendar(at);
    const before = this.newest.version;
    if (this.mode === 'database') {
      // Another node may have rotated: that is a change to report as well (its rewrap is due here too).
      await this.refresh();
      if (this.newest.version > before) return this.newest.version;
      if (at - this.newest.createdAt < this.periodMs) return null;
      // Re-checked under the lock: another node may rotate between our read and our insert.
      this.loadRows(await this.addVersion(at, (newest) => at - newest.created_at.getTime() >= this.periodMs));
      return this.newest.version > before ? this.newest.version : null;
    }
    if (at - this.newest.createdAt < this.periodMs) return null;
    const file = (this.source as { file: string }).file;
    // Re-checked under the lock: another process may have rotated since we loaded the file.
    const data = await updateKeyringFile(file, (current) => {
      const newest = current.versions.reduce((a, b) => (b.version > a.version ? b : a));
      if (at - Date.parse(newest.createdAt) < this.periodMs) return null;
      return { ...current, versions: [...current.versions, LocalKeyring.newVersion(this.master, newest.version + 1, at)] };
    });
    this.load(data.versions, `keyring file ${file}`);
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
    if (this.source?.file) await assertPrivate(this.source.file);
  }

  async close(): Promise<void> {
    await this.refreshing;
    this.keys.clear();
  }

  private static freshFile(envMaster: Buffer | undefined, at: number): KeyringFileData {
    const master = envMaster ?? randomBytes(internals.keyBytes);
    return {
      format: 1,
      ...(!envMaster && { master: master.toString('base64') }),
      versions: [LocalKeyring.newVersion(master, 1, at)],
    };
  }

  private static masterOf(envMaster: Buffer | undefined, data: KeyringFileData | null, file: string | undefined): Buffer {
    if (data?.master && envMaster) {
      throw new KeyringError('config', `keyring file ${file} holds its own generated master key; unset KEYRING_KEY or point KEYRING_FILE elsewhere`);
    }
    const master = envMaster ?? (data?.master ? internals.parseMaster(data.master, `master key in ${file}`) : undefined);
    if (!master) throw new KeyringError('config', `keyring file ${file} has no master key in it: set KEYRING_KEY`);
    return master;
  }

  private static newVersion(master: Buffer, version: number, at: number): KeyVersionRecord {
    // The associated data names the file for history's sake: stored rows keep it, so an imported version
    // is the file's bytes unchanged.
    const sealed = internals.seal(master, randomBytes(internals.keyBytes), `keyring-file:v${version}`);
    return { version, createdAt: new Date(at).toISOString(), key: sealed.toString('base64') };
  }

  private static record(row: KeyVersionRow): KeyVersionRecord {
    return { version: row.version, createdAt: row.created_at.toISOString(), key: row.wrapped_key };
  }

  // Adds the next version under the lock when `due` (given the newest stored row) says so; returns every row.
  private async addVersion(at: number, due: (newest: KeyVersionRow) => boolean): Promise<KeyVersionRow[]> {
    const { sql } = this.source as { sql: postgres.Sql };
    return transaction(sql, async (tx) => {
      await lockKeyVersions(tx);
      const stored = await keyVersions(tx);
      const newest = stored[stored.length - 1];
      if (!newest || !due(newest)) return stored;
      const rec = LocalKeyring.newVersion(this.master, newest.version + 1, at);
      await insertKeyVersion(tx, { version: rec.version, createdAt: new Date(at), wrappedKey: rec.key, source: 'created' });
      return keyVersions(tx);
    });
  }

  private async refresh(): Promise<void> {
    const { sql } = this.source as { sql: postgres.Sql };
    this.loadRows(await keyVersions(sql));
  }

  // Encryption never waits on the database (a caller may hold the embedded mode's only connection): the
  // re-read runs beside it, and the next encryption uses what it found.
  private refreshSoon(): void {
    if (this.mode !== 'database' || this.refreshing || this.now() - this.loadedAt < internals.refreshMs) return;
    this.loadedAt = this.now();
    this.refreshing = this.refresh().catch(() => undefined).finally(() => { this.refreshing = undefined; });
  }

  private loadRows(rows: KeyVersionRow[]): void {
    this.load(rows.map(LocalKeyring.record), 'the database (keyring_versions)');
    this.loadedAt = this.now();
  }

  private load(records: KeyVersionRecord[], where: string): void {
    for (const rec of records) {
      if (this.keys.has(rec.version)) continue;
      this.keys.set(rec.version, this.unwrap(rec, where));
      const createdAt = Date.parse(rec.createdAt);
      if (rec.version > this.newest.version) this.newest = { version: rec.version, createdAt };
    }
  }

  private unwrap(rec: KeyVersionRecord, where: string): Buffer {
    try {
      return internals.open(this.master, Buffer.from(rec.key, 'base64'), `keyring-file:v${rec.version}`);
    } catch {
      // Never the key or the master: only which version and where, and the likely cause.
      const which = this.mode === 'database' ? 'every node must start with the same KEYRING_KEY' : 'wrong KEYRING_KEY?';
      throw new KeyringError('config', `the master key does not open version ${rec.version} in ${where} (${which})`);
    }
  }

  private followCalendar(at: number): number | null {
    const version = Math.max(1, 1 + Math.floor((at - internals.calendarEpoch) / this.periodMs));
    if (version <= this.newest.version) return null;
    this.newest = { version, createdAt: internals.calendarEpoch + (version - 1) * this.periodMs };
    return version;
  }

  private async keyFor(version: number): Promise<Buffer> {
    if (!this.source) {
      let key = this.keys.get(version);
      if (!key) {
        key = Buffer.from(hkdfSync('sha256', this.master, internals.hkdfSalt, `local:v${version}`, internals.keyBytes));
        this.keys.set(version, key);
      }
      return key;
    }
    if (!this.keys.has(version)) {
      // Another process may have rotated since we loaded the versions.
      if ('sql' in this.source) await this.refresh();
      else {
        const data = await readKeyringFile(this.source.file);
        if (data) this.load(data.versions, `keyring file ${this.source.file}`);
      }
    }
    const key = this.keys.get(version);
    if (!key) {
      const where = 'sql' in this.source ? 'the database (keyring_versions)' : `keyring file ${this.source.file}`;
      throw new KeyringError('unknown-version', `key version ${version} is not in ${where}`);
    }
    return key;
  }

  private parse(ciphertext: string): { version: number; body: string } {
    const m = internals.pattern.exec(ciphertext);
    if (!m) throw new KeyringError('malformed', 'not a local keyring ciphertext (expected local:v<N>:<base64>)');
    return { version: Number(m[1]), body: m[2]! };
  }
}
