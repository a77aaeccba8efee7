import type postgres from 'postgres';
import type { Keyring } from '../crypto/keyring.ts';
import type { OutboundMessage } from '../platforms/adapter.ts';
import { uploadIdOfMessage } from '../store/uploads.ts';

// Signed, expiring links to a stored file, for platforms that download a message's media themselves
// (Instagram, Threads: image_url / video_url; API.md "PUBLIC_URL/v1/media/{uploadId}?exp=&sig="). The
// signature is the keyring's encryption of "<uploadId>.<exp>" with a context of its own: every node
// sharing the keyring (KEYRING_KEY, or Vault's transit key) verifies what any node signed, and nothing
// but the keyring can make one. The link carries no bearer token and opens that one file until `exp`.

const CONTEXT = 'media-link';

/** Links live long enough for Instagram's slowest fetch of a container (processing up to ~10 min), not for days. */
export const LINK_TTL_S = 3600;

export class MediaLinks {
  constructor(private readonly sql: postgres.Sql, private readonly keyring: Keyring, private readonly publicUrl: string, private readonly now: () => number = Date.now) {}

  async sign(uploadId: string, ttlS = LINK_TTL_S): Promise<string> {
    const exp = Math.floor(this.now() / 1000) + ttlS;
    const sig = await this.keyring.encrypt(`${uploadId}.${exp}`, CONTEXT);
    const u = new URL(`${this.publicUrl}/v1/media/${uploadId}`);
    u.searchParams.set('exp', String(exp));
    u.searchParams.set('sig', sig);
    return u.toString();
  }

  /** Whether `sig` is this service's signature of (uploadId, exp) and `exp` has not passed. */
  async valid(uploadId: string, exp: number, sig: string): Promise<boolean> {
    if (!Number.isInteger(exp) || exp * 1000 <= this.now()) return false;
    try {
      return (await this.keyring.decrypt(sig, CONTEXT)) === `${uploadId}.${exp}`;
    } catch {
      return false;
    }
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
