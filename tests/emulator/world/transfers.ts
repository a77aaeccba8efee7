import { randomBytes } from 'node:crypto';
import { TgError, type Clock } from './types.ts';

// Authorizations moving between DCs, as opaque one-use tokens bound to a user and a target DC:
// auth.exportAuthorization → auth.importAuthorization, and the QR login token that
// auth.loginTokenMigrateTo hands to the client for auth.importLoginToken on the account's DC.

const EXPORT_TTL_MS = 120_000; // the client imports at once (GramJS does it right after connecting)
const LOGIN_TOKEN_TTL_MS = 30_000; // as long as a QR login token lives

interface Pending { userId: number; dc: number; expiresAt: number }

export class Transfers {
  private readonly exported = new Map<string, Pending>();
  private readonly loginTokens = new Map<string, Pending>();

  constructor(private readonly clock: Clock) {}

  /** auth.exportAuthorization: bytes that log `userId` in on `dc`, once. */
  exportAuthorization(userId: number, dc: number): Buffer {
    return this.issue(this.exported, userId, dc, EXPORT_TTL_MS, 128);
  }

  /** auth.importAuthorization on `dc`: the user the bytes were exported for. */
  importAuthorization(id: number, bytes: Buffer, dc: number): number {
    const key = bytes.toString('hex');
    const p = this.live(this.exported, key);
    if (!p || p.dc !== dc) throw new TgError(400, 'AUTH_BYTES_INVALID');
    if (p.userId !== id) throw new TgError(400, 'USER_ID_INVALID');
    this.exported.delete(key);
    return p.userId;
  }

  /** The token of auth.loginTokenMigrateTo: an accepted QR login, to finish on the account's DC. */
  loginToken(userId: number, dc: number): Buffer {
    return this.issue(this.loginTokens, userId, dc, LOGIN_TOKEN_TTL_MS, 32);
  }

  /**
   * auth.importLoginToken on `dc`: the user, or the DC the token belongs to (the client asked the
   * wrong one: it is told to migrate again, and the token stays valid).
   */
  importLoginToken(token: Buffer, dc: number): { userId: number } | { dc: number } {
    const key = token.toString('hex');
    const p = this.loginTokens.get(key);
    if (!p) throw new TgError(400, 'AUTH_TOKEN_INVALID');
    if (p.expiresAt <= this.clock.now()) {
      this.loginTokens.delete(key);
      throw new TgError(400, 'AUTH_TOKEN_EXPIRED');
    }
    if (p.dc !== dc) return { dc: p.dc };
    this.loginTokens.delete(key);
    return { userId: p.userId };
  }

  clear(): void {
    this.exported.clear();
    this.loginTokens.clear();
  }

  private issue(map: Map<string, Pending>, userId: number, dc: number, ttlMs: number, size: number): Buffer {
    const now = this.clock.now();
    for (const [k, p] of map) if (p.expiresAt <= now) map.delete(k); // a handful at a time: logins are rare
    const bytes = randomBytes(size);
    map.set(bytes.toString('hex'), { userId, dc, expiresAt: now + ttlMs });
    return bytes;
  }

  private live(map: Map<string, Pending>, key: string): Pending | undefined {
    const p = map.get(key);
    if (p && p.expiresAt <= this.clock.now()) {
      map.delete(key);
      return undefined;
    }
    return p;
  }
}
