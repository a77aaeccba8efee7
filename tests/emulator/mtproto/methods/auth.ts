import { randomBytes } from 'node:crypto';
import { Api } from 'telegram';
import { DH_G, DH_PRIME, PRIME } from '../../crypto/mod-pow.ts';
import type { SrpVerifier } from '../../crypto/srp.ts';
import type { Delivery } from '../../world/codes.ts';
import type { LoginTokenResult, SentCode } from '../../world/login.ts';
import { TgError, type CodeType, type UserRec } from '../../world/types.ts';
import { apiUser } from '../peers.ts';
import { big, native } from '../tl.ts';
import type { Method } from './context.ts';

// Login: phone codes and their resends, 2FA (SRP) and its recovery by e-mail, QR tokens, moving an
// authorization between DCs, log out. The world decides; this renders Telegram's constructors.

const authorization = (user: UserRec) => new Api.auth.Authorization({ user: apiUser(user, user.id) });

const srpAlgo = (salt1: Buffer, salt2: Buffer) =>
  new Api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow({ salt1, salt2, g: DH_G, p: DH_PRIME });

function sentCodeType(d: Delivery): Api.auth.TypeSentCodeType {
  switch (d.type) {
    case 'app': return new Api.auth.SentCodeTypeApp({ length: d.length });
    case 'sms': return new Api.auth.SentCodeTypeSms({ length: d.length });
    case 'call': return new Api.auth.SentCodeTypeCall({ length: d.length });
    case 'flash-call': return new Api.auth.SentCodeTypeFlashCall({ pattern: d.pattern! });
    case 'missed-call': return new Api.auth.SentCodeTypeMissedCall({ prefix: d.prefix!, length: d.length });
    case 'email': return new Api.auth.SentCodeTypeEmailCode({ emailPattern: d.emailPattern!, length: d.length });
    case 'fragment': return new Api.auth.SentCodeTypeFragmentSms({ url: d.url!, length: d.length });
  }
}

/** auth.CodeType for next_type: only the phone channels have one (the app and e-mail never come next). */
function nextCodeType(type: CodeType | undefined): Api.auth.TypeCodeType | undefined {
  switch (type) {
    case 'sms': return new Api.auth.CodeTypeSms();
    case 'call': return new Api.auth.CodeTypeCall();
    case 'flash-call': return new Api.auth.CodeTypeFlashCall();
    case 'missed-call': return new Api.auth.CodeTypeMissedCall();
    case 'fragment': return new Api.auth.CodeTypeFragmentSms();
    default: return undefined;
  }
}

const sentCode = (s: SentCode) =>
  new Api.auth.SentCode({ type: sentCodeType(s), phoneCodeHash: s.hash, nextType: nextCodeType(s.nextType), timeout: s.timeoutS });

const sendCode: Method = (ctx, req: Api.auth.SendCode) => sentCode(ctx.world.login.sendCode(ctx.authKey, req.phoneNumber, ctx.dc.id));

const resendCode: Method = (ctx, req: Api.auth.ResendCode) => sentCode(ctx.world.login.resendCode(ctx.authKey, req.phoneNumber, req.phoneCodeHash));

const cancelCode: Method = (ctx, req: Api.auth.CancelCode) => {
  ctx.world.login.cancelCode(ctx.authKey, req.phoneNumber, req.phoneCodeHash);
  return true;
};

const signIn: Method = (ctx, req: Api.auth.SignIn) =>
  authorization(ctx.world.login.signIn(ctx.authKey, req.phoneNumber, req.phoneCodeHash, req.phoneCode ?? ''));

const getPassword: Method = (ctx) => {
  const { user, challenge } = ctx.world.login.passwordState(ctx.authKey);
  // new_algo carries the server half of salt1 for setting a password (8 bytes, as Telegram).
  const base = { newAlgo: srpAlgo(randomBytes(8), randomBytes(16)), newSecureAlgo: new Api.SecurePasswordKdfAlgoSHA512({ salt: randomBytes(8) }), secureRandom: randomBytes(32) };
  if (!user?.srp || !challenge) return new Api.account.Password({ hasPassword: false, ...base });
  return new Api.account.Password({
    hasPassword: true, hasRecovery: user.recoveryEmail !== undefined, currentAlgo: srpAlgo(user.srp.salt1, user.srp.salt2),
    srp_B: challenge.B, srpId: big(challenge.srpId), ...base,
  });
};

const checkPassword: Method = (ctx, req: Api.auth.CheckPassword) => {
  const pw = req.password;
  if (!(pw instanceof Api.InputCheckPasswordSRP)) throw new TgError(400, 'PASSWORD_HASH_INVALID');
  return authorization(ctx.world.login.checkPassword(ctx.authKey, native(pw.srpId), pw.A, pw.M1));
};

const requestPasswordRecovery: Method = (ctx) =>
  new Api.auth.PasswordRecovery({ emailPattern: ctx.world.login.requestPasswordRecovery(ctx.authKey) });

const checkRecoveryPassword: Method = (ctx, req: Api.auth.CheckRecoveryPassword) => {
  ctx.world.login.checkRecoveryCode(ctx.authKey, req.code);
  return true;
};

const recoverPassword: Method = (ctx, req: Api.auth.RecoverPassword) =>
  authorization(ctx.world.login.recoverPassword(ctx.authKey, req.code, newPassword(req.newSettings)));

/**
 * The new password of auth.recoverPassword: absent or an empty hash removes the password; otherwise
 * the verifier g^x the client computed with the new_algo of account.getPassword (its salt1 extended
 * by the client, as GramJS's updateTwoFaSettings does). Anything else is NEW_SETTINGS_INVALID.
 */
function newPassword(s: Api.account.PasswordInputSettings | undefined): SrpVerifier | undefined {
  if (!s?.newPasswordHash?.length) return undefined;
  const algo = s.newAlgo;
  const v = BigInt(`0x${s.newPasswordHash.toString('hex')}`);
  const fits = algo instanceof Api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow
    && algo.g === DH_G && algo.p.equals(DH_PRIME) && algo.salt1.length >= 8 && algo.salt2.length >= 8 && s.newPasswordHash.length <= 256 && v > 1n && v < PRIME - 1n;
  if (!fits) throw new TgError(400, 'NEW_SETTINGS_INVALID');
  return { salt1: algo.salt1, salt2: algo.salt2, verifier: s.newPasswordHash };
}

function loginToken(r: LoginTokenResult): Api.auth.TypeLoginToken {
  if ('user' in r) return new Api.auth.LoginTokenSuccess({ authorization: authorization(r.user) });
  if ('migrateTo' in r) return new Api.auth.LoginTokenMigrateTo({ dcId: r.migrateTo.dc, token: r.migrateTo.token });
  return new Api.auth.LoginToken({ token: r.token, expires: r.expires });
}

const exportLoginToken: Method = (ctx) => loginToken(ctx.world.login.exportLoginToken(ctx.authKey, ctx.dc.id));

const importLoginToken: Method = (ctx, req: Api.auth.ImportLoginToken) => loginToken(ctx.world.login.importLoginToken(ctx.authKey, req.token, ctx.dc.id));

/** Bytes that log this user in on another DC (GramJS exports before using a DC that is not its own). */
const exportAuthorization: Method = (ctx, req: Api.auth.ExportAuthorization) => {
  const user = ctx.user();
  if (!Number.isInteger(req.dcId) || req.dcId < 1 || req.dcId > ctx.world.dcCount || req.dcId === ctx.dc.id) throw new TgError(400, 'DC_ID_INVALID');
  return new Api.auth.ExportedAuthorization({ id: big(user.id), bytes: ctx.world.transfers.exportAuthorization(user.id, req.dcId) });
};

const importAuthorization: Method = (ctx, req: Api.auth.ImportAuthorization) => {
  const userId = ctx.world.transfers.importAuthorization(Number(native(req.id)), req.bytes, ctx.dc.id);
  ctx.authKey.userId = userId;
  ctx.authKey.passwordUserId = undefined;
  return authorization(ctx.world.requireUser(ctx.authKey));
};

const logOut: Method = (ctx) => {
  ctx.authorised();
  ctx.world.login.logOut(ctx.authKey);
  return new Api.auth.LoggedOut({});
};

export const authMethods: Record<string, Method> = {
  'auth.SendCode': sendCode,
  'auth.ResendCode': resendCode,
  'auth.CancelCode': cancelCode,
  'auth.SignIn': signIn,
  'auth.CheckPassword': checkPassword,
  'auth.RequestPasswordRecovery': requestPasswordRecovery,
  'auth.CheckRecoveryPassword': checkRecoveryPassword,
  'auth.RecoverPassword': recoverPassword,
  'auth.ExportLoginToken': exportLoginToken,
  'auth.ImportLoginToken': importLoginToken,
  'auth.ExportAuthorization': exportAuthorization,
  'auth.ImportAuthorization': importAuthorization,
  'auth.LogOut': logOut,
  'account.GetPassword': getPassword,
};

/** Methods an authorised key may call on any DC (an imported authorization can still log out). */
export const anyDcMethods = new Set(['auth.LogOut']);

/** Methods a client may call before it is logged in; everything else needs an authorised key on the account's DC. */
export const publicMethods = new Set([
  ...Object.keys(authMethods).filter((m) => m !== 'auth.ExportAuthorization' && !anyDcMethods.has(m)), 'help.GetConfig', 'help.GetNearestDc',
]);
