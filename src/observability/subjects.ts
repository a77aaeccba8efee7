import { createHmac, randomBytes } from 'node:crypto';

// Log lines name a caller by a keyed hash of their `sub`, never the sub itself (ECS `user.hash`):
// HMAC-SHA256(key, salt ‖ sub), the first 16 bytes in hex. The key (src/crypto/purpose-keys.ts) is
// the same on every node and stays out of the logs, so a line cannot be tied to a person by hashing
// guessed subs; the salt is the caller's own (src/store/log-salts.ts), so deleting it (DELETE /v1/me)
// makes the hash in every line written for them impossible to compute again, while lines already in
// ELK stay as they are until their 30-day retention deletes them (docs/security.md).

export interface SaltStore {
  /** The caller's salt, made on first use. */
  saltOf(sub: string): Promise<Buffer>;
  /** Forgets it: no hash made with it can be recomputed. */
  deleteSalt(sub: string): Promise<unknown>;
}

export interface SubjectsOptions {
  /** Cached hashes; each costs ~150 bytes. */
  cacheMax?: number;
  /**
   * How long a hash is reused without asking the salt store again. It bounds how long ANOTHER node
   * keeps writing a caller's old hash after that caller's erasure (this node forgets at once).
   */
  cacheMs?: number;
  now?: () => number;
}

/** 16 bytes (128 bits): no collision among any realistic number of callers, half the line space of 32. */
export function subjectHash(key: Buffer, salt: Buffer, sub: string): string {
  return createHmac('sha256', key).update(salt).update(sub, 'utf8').digest('hex').slice(0, 32);
}

export class LogSubjects {
  readonly #key: Buffer;
  readonly #salts: SaltStore;
  readonly #cache = new Map<string, { hash: string; at: number }>();
  readonly #max: number;
  readonly #ttl: number;
  readonly #now: () => number;

  constructor(key: Buffer, salts: SaltStore, opts: SubjectsOptions = {}) {
    this.#key = key;
    this.#salts = salts;
    // 10,000 callers active within a minute is ~1.5 MB; a miss costs one indexed read.
    this.#max = opts.cacheMax ?? 10_000;
    this.#ttl = opts.cacheMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  /** The caller's hash for log lines. */
  async hashOf(sub: string): Promise<string> {
    const now = this.#now();
    const hit = this.#cache.get(sub);
    if (hit && now - hit.at < this.#ttl) return hit.hash;
    const hash = subjectHash(this.#key, await this.#salts.saltOf(sub), sub);
    this.#cache.delete(sub); // re-inserted last: the Map's order is the eviction order
    if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(sub, { hash, at: now });
    return hash;
  }

  /** Deletes the caller's salt; from now on their lines carry a new, unrelated hash. */
  async erase(sub: string): Promise<void> {
    this.#cache.delete(sub);
    await this.#salts.deleteSalt(sub);
    this.#cache.delete(sub); // a request of the same caller may have cached the old hash meanwhile
  }
}

/**
 * Salts and key in this process's memory only: hashes change with every start and nothing can
 * recompute them. For servers built without a database (tests, tools); the daemon stores its salts.
 */
export function memorySubjects(): LogSubjects {
  const salts = new Map<string, Buffer>();
  return new LogSubjects(randomBytes(32), {
    saltOf: async (sub) => {
      let salt = salts.get(sub);
      if (!salt) salts.set(sub, salt = randomBytes(16));
      return salt;
    },
    deleteSalt: async (sub) => { salts.delete(sub); },
  });
}
