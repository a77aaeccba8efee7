import type { EmulatorClock } from '../platforms/types.ts';
import { GraphError, invalidParam, randomToken } from './graph.ts';

// Meta user access tokens on the shared clock (Instagram "Business Login", "Access Token" and
// "Refresh Access Token" references; Threads "Long-Lived Access Tokens"): a short-lived token lives
// 1 hour, a long-lived one 60 days, and a long-lived token can be refreshed only when it is at least
// 24 hours old and not expired; the refreshed token lives 60 days from the refresh. WhatsApp system-user
// tokens do not expire unless asked to. Dead tokens answer Graph code 190 with the subcode of the
// Graph "Handling Errors" guide: 463 expired, 458 app deauthorized, 460 password changed; an unknown
// token has no subcode.

export const SHORT_TTL_S = 3600;
export const LONG_TTL_S = 60 * 86_400;
export const REFRESH_MIN_AGE_S = 86_400;

export type TokenKind = 'short' | 'long' | 'system';
export type RevokeReason = 'deauthorized' | 'password-changed';
export const revokeReasons: readonly RevokeReason[] = ['deauthorized', 'password-changed'];

export interface TokenRecord {
  token: string;
  kind: TokenKind;
  /** The account (Instagram/Threads user id) or business (WhatsApp WABA id) the token acts for. */
  subject: string;
  scopes: string[];
  issuedAt: number;
  expiresAt: number;
  seq: number;
}

export class TokenStore {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly revoked = new Map<string, { seq: number; reason: RevokeReason }>();
  private seq = 0;

  /**
   * @param prefix how the platform's tokens start (IGAA…, THAA…, EAA…): only to make them recognisable.
   * @param authStatus the HTTP status code 190 comes with: 400 on Graph, 401 on the WhatsApp Cloud API.
   */
  constructor(private readonly clock: EmulatorClock, private readonly prefix: string, private readonly appId: () => string, private readonly authStatus = 400) {}

  issue(kind: TokenKind, subject: string, scopes: string[], ttlS?: number): TokenRecord {
    const ttl = ttlS ?? (kind === 'short' ? SHORT_TTL_S : kind === 'long' ? LONG_TTL_S : Infinity);
    const now = this.clock.now();
    const rec: TokenRecord = { token: randomToken(this.prefix), kind, subject, scopes, issuedAt: now, expiresAt: now + ttl * 1000, seq: ++this.seq };
    this.tokens.set(rec.token, rec);
    return rec;
  }

  /** The live record behind `token`, or the Graph error the platform answers with. */
  check(token: string | undefined): TokenRecord {
    if (!token) throw new GraphError(this.authStatus, 104, 'An access token is required to request this resource.');
    const rec = this.tokens.get(token);
    if (!rec) throw new GraphError(this.authStatus, 190, 'Invalid OAuth access token - Cannot parse access token');
    const revoked = this.revoked.get(rec.subject);
    if (revoked && revoked.seq > rec.seq) {
      if (revoked.reason === 'password-changed') {
        throw new GraphError(this.authStatus, 190, 'Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.', { subcode: 460 });
      }
      throw new GraphError(this.authStatus, 190, `Error validating access token: The user has not authorized application ${this.appId()}.`, { subcode: 458 });
    }
    const now = this.clock.now();
    if (now >= rec.expiresAt) {
      throw new GraphError(this.authStatus, 190, `Error validating access token: Session has expired on ${stamp(rec.expiresAt)}. The current time is ${stamp(now)}.`, { subcode: 463 });
    }
    return rec;
  }

  /** The short → long exchange (`ig_exchange_token` / `th_exchange_token`). */
  exchange(token: string | undefined): TokenRecord {
    const rec = this.check(token);
    if (rec.kind !== 'short') throw invalidParam('(#100) Only a short-lived user access token can be exchanged for a long-lived one');
    return this.issue('long', rec.subject, rec.scopes);
  }

  /**
   * The refresh (`ig_refresh_token` / `th_refresh_token`). The old token stays valid until it expires:
   * a client that crashes before storing the new one loses nothing.
   */
  refresh(token: string | undefined): TokenRecord {
    const rec = this.check(token);
    if (rec.kind !== 'long') throw invalidParam('(#100) Only a long-lived user access token can be refreshed');
    const ageS = (this.clock.now() - rec.issuedAt) / 1000;
    if (ageS < REFRESH_MIN_AGE_S) {
      throw invalidParam(`(#100) The access token must be at least 24 hours old to be refreshed; this one is ${Math.floor(ageS)} seconds old`);
    }
    return this.issue('long', rec.subject, rec.scopes);
  }

  /** Every token of `subject` issued so far dies; tokens from a later authorization work. */
  revoke(subject: string, reason: RevokeReason): number {
    this.revoked.set(subject, { seq: this.seq + 1, reason });
    this.seq++;
    let n = 0;
    for (const rec of this.tokens.values()) if (rec.subject === subject) n++;
    return n;
  }

  expiresInS(rec: TokenRecord): number {
    return Math.max(0, Math.floor((rec.expiresAt - this.clock.now()) / 1000));
  }

  reset(): void {
    this.tokens.clear();
    this.revoked.clear();
  }
}

// Graph writes times like "Tuesday, 18-Jun-24 10:00:00 PDT"; UTC keeps it plain.
const stamp = (ms: number): string => {
  const d = new Date(ms);
  const day = d.toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' });
  const p = (n: number) => String(n).padStart(2, '0');
  const mon = d.toLocaleDateString('en-US', { month: 'short', timeZone: 'UTC' });
  return `${day}, ${p(d.getUTCDate())}-${mon}-${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
};
