import { randomBytes, randomInt } from 'node:crypto';
import { checkProof, startChallenge } from '../crypto/srp.ts';
import { TgError, normalizePhone, validPhone, type Account, type AuthKeyRec, type Clock, type UserRec, type WorldEvent } from './types.ts';

// Login steps on an auth key: phone codes (one per key, expiring), 2FA with SRP, QR login tokens
// accepted by another device, log out. The code belongs to the key that asked for it, so the same
// client must live across the steps, as with Telegram.

const LOGIN_TOKEN_TTL_S = 30; // Telegram's QR login tokens live ~30 s

export interface LoginDeps {
  clock: Clock;
  codeTtlMs: number;
  authKeys: Map<bigint, AuthKeyRec>;
  userByPhone(phone: string): UserRec | undefined;
  account(id: number): Account | undefined;
  emit(e: WorldEvent): void;
}

export class Logins {
  private lastCodes = new Map<string, string>();

  constructor(private readonly deps: LoginDeps) {}

  sendCode(rec: AuthKeyRec, phone: string): string {
    const digits = normalizePhone(phone);
    // The emulator has no sign-up: only numbers created through the control API exist.
    if (!validPhone(digits) || !this.deps.userByPhone(digits)) throw new TgError(400, 'PHONE_NUMBER_INVALID');
    const code = String(randomInt(10_000, 100_000));
    const hash = randomBytes(9).toString('hex');
    rec.login = { phone: digits, hash, code, expiresAt: this.deps.clock.now() + this.deps.codeTtlMs };
    this.lastCodes.set(digits, code);
    return hash;
  }

  lastCode(phone: string): string | undefined {
    return this.lastCodes.get(normalizePhone(phone));
  }

  signIn(rec: AuthKeyRec, phone: string, hash: string, code: string): UserRec {
    const login = rec.login;
    if (!code) throw new TgError(400, 'PHONE_CODE_EMPTY');
    // The code belongs to the key that asked for it: another client cannot finish the login.
    if (!login || login.hash !== hash || login.phone !== normalizePhone(phone)) throw new TgError(400, 'PHONE_CODE_EXPIRED');
    if (this.deps.clock.now() > login.expiresAt) {
      rec.login = undefined;
      throw new TgError(400, 'PHONE_CODE_EXPIRED');
    }
    if (login.code !== code) throw new TgError(400, 'PHONE_CODE_INVALID');
    rec.login = undefined;
    return this.completeLogin(rec, this.deps.userByPhone(login.phone)!);
  }

  private completeLogin(rec: AuthKeyRec, user: UserRec): UserRec {
    if (user.srp) {
      rec.passwordUserId = user.id;
      throw new TgError(401, 'SESSION_PASSWORD_NEEDED');
    }
    rec.userId = user.id;
    rec.passwordUserId = undefined;
    return user;
  }

  /** account.getPassword: the user whose password is due (pending login or logged in) and a fresh SRP challenge. */
  passwordState(rec: AuthKeyRec): { user?: UserRec; challenge?: ReturnType<typeof startChallenge> } {
    const id = rec.passwordUserId ?? (rec.revoked ? undefined : rec.userId);
    const user = id === undefined ? undefined : this.deps.account(id);
    if (!user || user.kind !== 'user' || !user.srp) return { user: user?.kind === 'user' ? user : undefined };
    rec.srp = startChallenge(user.srp);
    return { user, challenge: rec.srp };
  }

  checkPassword(rec: AuthKeyRec, srpId: bigint, A: Buffer, M1: Buffer): UserRec {
    const user = rec.passwordUserId === undefined ? undefined : this.deps.account(rec.passwordUserId);
    if (!user || user.kind !== 'user' || !user.srp) throw new TgError(400, 'PASSWORD_HASH_INVALID');
    if (!rec.srp || rec.srp.srpId !== srpId) throw new TgError(400, 'SRP_ID_INVALID');
    const ok = checkProof(user.srp, rec.srp, A, M1);
    rec.srp = undefined; // one proof per challenge, like Telegram
    if (!ok) throw new TgError(400, 'PASSWORD_HASH_INVALID');
    rec.userId = user.id;
    rec.passwordUserId = undefined;
    return user;
  }

  /** auth.exportLoginToken: a token to show as QR, or the login once a device accepted it. */
  exportLoginToken(rec: AuthKeyRec): { token: Buffer; expires: number } | { user: UserRec } {
    const qr = rec.qr;
    if (qr?.acceptedBy !== undefined) {
      rec.qr = undefined;
      return { user: this.completeLogin(rec, this.deps.account(qr.acceptedBy) as UserRec) };
    }
    if (!qr || qr.expiresAt <= this.deps.clock.now()) {
      rec.qr = { token: randomBytes(32), expiresAt: this.deps.clock.now() + LOGIN_TOKEN_TTL_S * 1000 };
    }
    return { token: rec.qr!.token, expires: Math.floor(rec.qr!.expiresAt / 1000) };
  }

  importLoginToken(rec: AuthKeyRec, token: Buffer): { user: UserRec } {
    if (!rec.qr || !rec.qr.token.equals(token)) throw new TgError(400, 'AUTH_TOKEN_INVALID');
    if (rec.qr.acceptedBy === undefined) throw new TgError(400, 'AUTH_TOKEN_INVALID');
    const r = this.exportLoginToken(rec);
    if (!('user' in r)) throw new TgError(400, 'AUTH_TOKEN_INVALID');
    return r;
  }

  /** A logged-in device of `phone` scans the QR: the waiting client gets updateLoginToken. */
  acceptQr(tokenB64url: string, phone: string): void {
    const user = this.deps.userByPhone(phone);
    if (!user) throw new TgError(404, 'PHONE_NUMBER_INVALID');
    const token = Buffer.from(tokenB64url, 'base64url');
    const rec = [...this.deps.authKeys.values()].find((k) => k.qr?.token.equals(token));
    if (!rec || !rec.qr) throw new TgError(404, 'AUTH_TOKEN_INVALID');
    if (rec.qr.expiresAt <= this.deps.clock.now()) throw new TgError(400, 'AUTH_TOKEN_EXPIRED');
    rec.qr.acceptedBy = user.id;
    this.deps.emit({ type: 'login-token', authKeyId: rec.id });
  }

  logOut(rec: AuthKeyRec): void {
    rec.userId = undefined;
    rec.passwordUserId = undefined;
  }

  clear(): void {
    this.lastCodes.clear();
  }
}
