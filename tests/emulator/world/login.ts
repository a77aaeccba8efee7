import { randomBytes, randomInt } from 'node:crypto';
import { checkProof, startChallenge, type SrpVerifier } from '../crypto/srp.ts';
import { codeLength, delivery, maskEmail, type Delivery } from './codes.ts';
import { normalizePhone, testNumberDc, validPhone } from './phones.ts';
import type { Transfers } from './transfers.ts';
import { TgError, type Account, type AuthKeyRec, type Clock, type CodeType, type LoginCode, type UserRec, type WorldEvent } from './types.ts';

// Login steps on an auth key: phone codes (one login per key, expiring, resent by the next type),
// 2FA with SRP and its recovery by e-mail code, QR login tokens accepted by another device, log out.
// The code belongs to the key that asked for it, so the same client must live across the steps, as
// with Telegram. A login for an account homed on another DC is sent there (PHONE_MIGRATE_X,
// auth.loginTokenMigrateTo).

const LOGIN_TOKEN_TTL_S = 30; // Telegram's QR login tokens live ~30 s
const RECOVERY_CODE_LENGTH = 6;

export interface LoginDeps {
  clock: Clock;
  codeTtlMs: number;
  authKeys: Map<bigint, AuthKeyRec>;
  transfers: Transfers;
  userByPhone(phone: string): UserRec | undefined;
  /** The account of a test number 99966XYYYY, made on first use; undefined for other numbers. */
  testUser(digits: string): UserRec | undefined;
  account(id: number): Account | undefined;
  emit(e: WorldEvent): void;
  /** A *_MIGRATE_X answer (counted). */
  migrate(kind: 'PHONE' | 'USER' | 'NETWORK', dc: number): TgError;
  /** A loginTokenMigrateTo served (counted). */
  migratedToken(): void;
  /** A FLOOD_WAIT_X answer (counted). */
  floodWait(seconds: number): TgError;
}

export type SentCode = Delivery & { hash: string };
export type LoginTokenResult = { token: Buffer; expires: number } | { user: UserRec } | { migrateTo: { dc: number; token: Buffer } };

const randomDigits = (n: number) => Array.from({ length: n }, () => randomInt(0, 10)).join('');

export class Logins {
  private lastCodes = new Map<string, { code: string; type: CodeType }>();

  constructor(private readonly deps: LoginDeps) {}

  /** auth.sendCode on DC `dc`: the first delivery of the user's order. */
  sendCode(rec: AuthKeyRec, phone: string, dc: number): SentCode {
    const digits = normalizePhone(phone);
    if (!validPhone(digits)) throw new TgError(406, 'PHONE_NUMBER_INVALID');
    // The emulator has no sign-up: only numbers created through the control API (and test numbers) exist.
    const user = this.deps.userByPhone(digits) ?? this.deps.testUser(digits);
    if (!user) throw new TgError(406, 'PHONE_NUMBER_INVALID');
    if (user.dc !== dc) throw this.deps.migrate('PHONE', user.dc);
    rec.login = { phone: digits, hash: randomBytes(9).toString('hex'), code: '', base: '', expiresAt: 0, step: 0, resendAt: 0 };
    return this.deliver(rec.login, user);
  }

  /** auth.resendCode: the next type of the user's order, once the last one's timeout has passed. */
  resendCode(rec: AuthKeyRec, phone: string, hash: string): SentCode {
    const login = this.pending(rec, phone, hash);
    const user = this.deps.userByPhone(login.phone);
    if (!user) throw new TgError(406, 'PHONE_NUMBER_INVALID');
    if (login.step + 1 >= user.codeTypes.length) throw new TgError(406, 'SEND_CODE_UNAVAILABLE');
    const waitMs = login.resendAt - this.deps.clock.now();
    if (waitMs > 0) throw this.deps.floodWait(Math.ceil(waitMs / 1000));
    login.step++;
    return this.deliver(login, user);
  }

  /** auth.cancelCode: the code of this login stops working. */
  cancelCode(rec: AuthKeyRec, phone: string, hash: string): void {
    this.pending(rec, phone, hash);
    rec.login = undefined;
  }

  private deliver(login: LoginCode, user: UserRec): SentCode {
    const now = this.deps.clock.now();
    const length = codeLength(user.codeTypes[login.step]!, user.codeLength);
    // Telegram resends the same code by the next channel; an e-mail code is longer, so it has its own.
    if (login.base.length !== length) {
      const testDc = testNumberDc(login.phone);
      login.base = testDc === undefined ? randomDigits(length) : String(testDc).repeat(length);
    }
    const d = delivery(user, login.step, login.base);
    login.code = d.code;
    login.expiresAt = now + this.deps.codeTtlMs;
    login.resendAt = now + (d.timeoutS ?? 0) * 1000;
    this.lastCodes.set(login.phone, { code: d.code, type: d.type });
    return { ...d, hash: login.hash };
  }

  /** The login this key started for `phone` with `hash`, or the error Telegram answers. */
  private pending(rec: AuthKeyRec, phone: string, hash: string): LoginCode {
    if (!hash) throw new TgError(400, 'PHONE_CODE_HASH_EMPTY');
    const login = rec.login;
    if (!login || login.hash !== hash || login.phone !== normalizePhone(phone)) throw new TgError(400, 'PHONE_CODE_EXPIRED');
    if (this.deps.clock.now() > login.expiresAt) {
      rec.login = undefined;
      throw new TgError(400, 'PHONE_CODE_EXPIRED');
    }
    return login;
  }

  lastCode(phone: string): { code: string; type: CodeType } | undefined {
    return this.lastCodes.get(normalizePhone(phone));
  }

  signIn(rec: AuthKeyRec, phone: string, hash: string, code: string): UserRec {
    if (!code) throw new TgError(400, 'PHONE_CODE_EMPTY');
    // The code belongs to the key that asked for it: another client cannot finish the login.
    const login = this.pending(rec, phone, hash);
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

  /** The user whose password is due on this key (pending login) or who is logged in on it. */
  private passwordUser(rec: AuthKeyRec): UserRec | undefined {
    const id = rec.passwordUserId ?? (rec.revoked ? undefined : rec.userId);
    const acc = id === undefined ? undefined : this.deps.account(id);
    return acc?.kind === 'user' ? acc : undefined;
  }

  /** account.getPassword: the user whose password is due (pending login) or logged in, and a fresh SRP challenge. */
  passwordState(rec: AuthKeyRec): { user?: UserRec; challenge?: ReturnType<typeof startChallenge> } {
    const user = this.passwordUser(rec);
    if (!user?.srp) return { user };
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

  // ---- 2FA recovery by e-mail code (auth.requestPasswordRecovery, auth.recoverPassword) ----

  /** Sends a recovery code to the user's recovery e-mail; answers the address's pattern. */
  requestPasswordRecovery(rec: AuthKeyRec): string {
    const user = this.passwordUser(rec);
    if (!user) throw new TgError(401, 'AUTH_KEY_UNREGISTERED');
    if (!user.srp) throw new TgError(400, 'PASSWORD_EMPTY');
    if (!user.recoveryEmail) throw new TgError(400, 'PASSWORD_RECOVERY_NA');
    user.recovery = { code: randomDigits(RECOVERY_CODE_LENGTH), expiresAt: this.deps.clock.now() + this.deps.codeTtlMs };
    return maskEmail(user.recoveryEmail);
  }

  /** auth.checkRecoveryPassword (and the first half of recoverPassword): the code is right and alive. */
  checkRecoveryCode(rec: AuthKeyRec, code: string): UserRec {
    if (!code) throw new TgError(400, 'CODE_EMPTY');
    const user = this.passwordUser(rec);
    if (!user) throw new TgError(401, 'AUTH_KEY_UNREGISTERED');
    if (!user.srp) throw new TgError(400, 'PASSWORD_EMPTY');
    const r = user.recovery;
    if (r && this.deps.clock.now() > r.expiresAt) {
      user.recovery = undefined;
      throw new TgError(400, 'PASSWORD_RECOVERY_EXPIRED');
    }
    if (!r || r.code !== code) throw new TgError(400, 'CODE_INVALID');
    return user;
  }

  /**
   * auth.recoverPassword: signs the key in and removes the 2FA password (and with it the recovery
   * e-mail), or replaces it with `newPassword` (the verifier the client computed; the e-mail stays).
   */
  recoverPassword(rec: AuthKeyRec, code: string, newPassword: SrpVerifier | undefined): UserRec {
    const user = this.checkRecoveryCode(rec, code);
    user.recovery = undefined;
    user.srp = newPassword;
    if (!newPassword) user.recoveryEmail = undefined;
    rec.userId = user.id;
    rec.passwordUserId = undefined;
    rec.srp = undefined;
    return user;
  }

  recoveryCode(phone: string): string | undefined {
    return this.deps.userByPhone(phone)?.recovery?.code;
  }

  // ---- QR login ----

  /**
   * auth.exportLoginToken on DC `dc`: a token to show as QR, or the login once a device accepted it
   * (on another DC than the account's: loginTokenMigrateTo with a token for that DC).
   */
  exportLoginToken(rec: AuthKeyRec, dc: number): LoginTokenResult {
    const qr = rec.qr;
    if (qr?.acceptedBy !== undefined) {
      rec.qr = undefined;
      const user = this.deps.account(qr.acceptedBy) as UserRec;
      if (user.dc !== dc) return this.migrateTo(user.dc, this.deps.transfers.loginToken(user.id, user.dc));
      return { user: this.completeLogin(rec, user) };
    }
    if (!qr || qr.expiresAt <= this.deps.clock.now()) {
      rec.qr = { token: randomBytes(32), expiresAt: this.deps.clock.now() + LOGIN_TOKEN_TTL_S * 1000 };
    }
    return { token: rec.qr!.token, expires: Math.floor(rec.qr!.expiresAt / 1000) };
  }

  /** auth.importLoginToken on DC `dc`: this key's own accepted token, or one of loginTokenMigrateTo. */
  importLoginToken(rec: AuthKeyRec, token: Buffer, dc: number): LoginTokenResult {
    if (rec.qr?.token.equals(token)) {
      if (rec.qr.acceptedBy === undefined) throw new TgError(400, 'AUTH_TOKEN_INVALID');
      return this.exportLoginToken(rec, dc);
    }
    const r = this.deps.transfers.importLoginToken(token, dc);
    if ('dc' in r) return this.migrateTo(r.dc, token);
    return { user: this.completeLogin(rec, this.deps.account(r.userId) as UserRec) };
  }

  private migrateTo(dc: number, token: Buffer): LoginTokenResult {
    this.deps.migratedToken();
    return { migrateTo: { dc, token } };
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
