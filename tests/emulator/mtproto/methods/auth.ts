import { randomBytes } from 'node:crypto';
import { Api } from 'telegram';
import { DH_G, DH_PRIME } from '../../crypto/mod-pow.ts';
import { TgError, type UserRec } from '../../world/types.ts';
import { apiUser } from '../peers.ts';
import { big, native } from '../tl.ts';
import type { Method } from './context.ts';

// Login: phone code, 2FA (SRP), QR tokens, log out.

const authorization = (user: UserRec) => new Api.auth.Authorization({ user: apiUser(user, user.id) });

const srpAlgo = (salt1: Buffer, salt2: Buffer) =>
  new Api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow({ salt1, salt2, g: DH_G, p: DH_PRIME });

const sendCode: Method = (ctx, req: Api.auth.SendCode) => {
  const hash = ctx.world.login.sendCode(ctx.authKey, req.phoneNumber);
  return new Api.auth.SentCode({ type: new Api.auth.SentCodeTypeApp({ length: 5 }), phoneCodeHash: hash, timeout: 60 });
};

const resendCode: Method = (ctx, req: Api.auth.ResendCode) => {
  const hash = ctx.world.login.sendCode(ctx.authKey, req.phoneNumber);
  return new Api.auth.SentCode({ type: new Api.auth.SentCodeTypeSms({ length: 5 }), phoneCodeHash: hash, timeout: 60 });
};

const signIn: Method = (ctx, req: Api.auth.SignIn) =>
  authorization(ctx.world.login.signIn(ctx.authKey, req.phoneNumber, req.phoneCodeHash, req.phoneCode ?? ''));

const getPassword: Method = (ctx) => {
  const { user, challenge } = ctx.world.login.passwordState(ctx.authKey);
  // new_algo carries the server half of salt1 for setting a password (8 bytes, as Telegram).
  const base = { newAlgo: srpAlgo(randomBytes(8), randomBytes(16)), newSecureAlgo: new Api.SecurePasswordKdfAlgoSHA512({ salt: randomBytes(8) }), secureRandom: randomBytes(32) };
  if (!user?.srp || !challenge) return new Api.account.Password({ hasPassword: false, ...base });
  return new Api.account.Password({
    hasPassword: true, currentAlgo: srpAlgo(user.srp.salt1, user.srp.salt2), srp_B: challenge.B, srpId: big(challenge.srpId), ...base,
  });
};

const checkPassword: Method = (ctx, req: Api.auth.CheckPassword) => {
  const pw = req.password;
  if (!(pw instanceof Api.InputCheckPasswordSRP)) throw new TgError(400, 'PASSWORD_HASH_INVALID');
  return authorization(ctx.world.login.checkPassword(ctx.authKey, native(pw.srpId), pw.A, pw.M1));
};

const exportLoginToken: Method = (ctx) => {
  const r = ctx.world.login.exportLoginToken(ctx.authKey);
  if ('user' in r) return new Api.auth.LoginTokenSuccess({ authorization: authorization(r.user) });
  return new Api.auth.LoginToken({ token: r.token, expires: r.expires });
};

const importLoginToken: Method = (ctx, req: Api.auth.ImportLoginToken) =>
  new Api.auth.LoginTokenSuccess({ authorization: authorization(ctx.world.login.importLoginToken(ctx.authKey, req.token).user) });

const logOut: Method = (ctx) => {
  ctx.user();
  ctx.world.login.logOut(ctx.authKey);
  return new Api.auth.LoggedOut({});
};

export const authMethods: Record<string, Method> = {
  'auth.SendCode': sendCode,
  'auth.ResendCode': resendCode,
  'auth.SignIn': signIn,
  'auth.CheckPassword': checkPassword,
  'auth.ExportLoginToken': exportLoginToken,
  'auth.ImportLoginToken': importLoginToken,
  'auth.LogOut': logOut,
  'account.GetPassword': getPassword,
};

/** Methods a client may call before it is logged in; everything else needs an authorised key. */
export const publicMethods = new Set([...Object.keys(authMethods).filter((m) => m !== 'auth.LogOut'), 'help.GetConfig', 'help.GetNearestDc']);
