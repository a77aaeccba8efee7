import { createHmac, timingSafeEqual } from 'node:crypto';
import type postgres from 'postgres';
import type { Keyring } from '../crypto/keyring.ts';
import { purposeKey } from '../crypto/purpose-keys.ts';
import { AppError } from '../errors.ts';
import type { OutboundMessage } from '../platforms/adapter.ts';
import { uploadIdOfMessage } from '../store/uploads.ts';

// Signed, expiring links to a stored file, for platforms that download a message's media themselves
// (Instagram, Threads: image_url / video_url; API.md "PUBLIC_URL/v1/media/{uploadId}?exp=&sig="). The
// signature is an HMAC-SHA256 of "<uploadId>.<exp>" under the `media-links` purpose key
// (src/crypto/purpose-keys.ts): every node sharing the keyring (KEYRING_KEY, or Vault's transit key)
// reads the same key, so it verifies what any node signed. Checking a link costs no keyring call: junk
// signatures on this unauthenticated route count no keyring errors (the KeyringFailures alert) and
// reach no Vault. The link carries no bearer token and opens that one file until `exp`.

/** Links live long enough for Instagram's slowest fetch of a container (processing up to ~10 min), not for days. */
export const LINK_TTL_S = 3600;

export class MediaLinks {
  #key?: Promise<Buffer>;

  constructor(private readonly sql: postgres.Sql, private readonly keyring: Keyring, private readonly publicUrl: string, private readonly now: () => number = Date.now) {}

  // Read once (a failed read is tried again by the next link).
  #signature(uploadId: string, exp: number): Promise<string> {
    this.#key ??= purposeKey(this.sql, this.keyring, 'media-links').catch((err: unknown) => {
      this.#key = undefined;
      throw new AppError('DEPENDENCY_UNAVAILABLE', 'media links cannot be signed or checked right now; retry shortly', { cause: err });
    });
    return this.#key.then((key) => createHmac('sha256', key).update(`${uploadId}.${exp}`).digest('base64url'));
  }

  async sign(uploadId: string, ttlS = LINK_TTL_S): Promise<string> {
    const exp = Math.floor(this.now() / 1000) + ttlS;
    const sig = await this.#signature(uploadId, exp);
    const u = new URL(`${this.publicUrl}/v1/media/${uploadId}`);
    u.searchParams.set('exp', String(exp));
    u.searchParams.set('sig', sig);
    return u.toString();
  }

  /** Whether `sig` is this service's signature of (uploadId, exp) and `exp` has not passed. */
  async valid(uploadId: string, exp: number, sig: string): Promise<boolean> {
    if (!Number.isInteger(exp) || exp * 1000 <= this.now()) return false;
    const want = Buffer.from(await this.#signature(uploadId, exp));
    const got = Buffer.from(sig);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  /**
   * The link of a message's stored file (delivery attached it before the send), or of one of a
   * carousel's files (`item`, its index in `msg.items`), or undefined.
   */
  link = async (msg: OutboundMessage, item?: number): Promise<string | undefined> => {
    if (item !== undefined) {
      const id = msg.items?.[item]?.uploadId;
      return id ? this.sign(id) : undefined;
    }
    const id = await uploadIdOfMessage(this.sql, msg.id);
    return id ? this.sign(id) : undefined;
  };
}
