import { TgError, type CodeType } from './types.ts';
import { isFragmentNumber } from './phones.ts';

// How a login code is delivered, without the wire format: the order of code types a user gets, what
// each delivery carries (length, flash-call pattern, missed-call prefix, e-mail pattern, Fragment URL)
// and how long before auth.resendCode may move on. The MTProto layer renders it as auth.sentCode.

/** Types a user can be given through `codeTypes`; `app` only first (a resend never goes back to the app). */
export const RESENDABLE: readonly CodeType[] = ['app', 'sms', 'call', 'flash-call', 'missed-call'];

/** Default order: the app first, then one SMS, as Telegram does for an account with a logged-in app. */
export const DEFAULT_CODE_TYPES: readonly CodeType[] = ['app', 'sms'];

// Seconds before auth.resendCode may move to the next type. Telegram sends `timeout` with next_type;
// the values are what the official apps count down (a minute for the app, two for SMS and calls).
const RESEND_AFTER_S: Record<CodeType, number> = {
  app: 60, sms: 120, call: 120, 'flash-call': 60, 'missed-call': 60, email: 60, fragment: 60,
};

/** Phone codes are 5 digits; e-mail codes 6 (`codeLength` on the user overrides both). */
export const codeLength = (type: CodeType, override?: number): number => override ?? (type === 'email' ? 6 : 5);

// The numbers the emulator "calls" from. The flash-call code is the whole calling number; the
// missed-call code is its last `length` digits.
const CALLER_PREFIX = '447700';

export interface Delivery {
  type: CodeType;
  /** What the user must enter. */
  code: string;
  length: number;
  /** flash-call: the calling number with the code part as `*`. */
  pattern?: string;
  /** missed-call: the calling number's beginning. */
  prefix?: string;
  /** email: the address as Telegram shows it (a***@e******.com). */
  emailPattern?: string;
  /** fragment: where the owner reads the code. */
  url?: string;
  nextType?: CodeType;
  /** Seconds before a resend may move to nextType; absent when there is none (or `codeTimeoutS: 0`). */
  timeoutS?: number;
}

export interface CodeUser { phone: string; codeTypes: CodeType[]; codeTimeoutS?: number; codeLength?: number; loginEmail?: string }

/**
 * The delivery order for a new user: a Fragment number gets its code on fragment.com only; a user with
 * a login e-mail gets it by e-mail first (then the requested phone types, the app left out).
 */
export function codeSequence(phoneDigits: string, requested: unknown, loginEmail: string | undefined): CodeType[] {
  if (requested !== undefined && !Array.isArray(requested)) throw new TgError(400, 'codeTypes must be a list');
  const list = (requested ?? (loginEmail ? [] : DEFAULT_CODE_TYPES)) as unknown[];
  for (const [i, t] of list.entries()) {
    if (!RESENDABLE.includes(t as CodeType)) throw new TgError(400, `unknown code type ${String(t)} (one of ${RESENDABLE.join(', ')})`);
    if (t === 'app' && i > 0) throw new TgError(400, 'code type app can only come first');
    if (list.indexOf(t) !== i) throw new TgError(400, `code type ${String(t)} given twice`);
  }
  if (isFragmentNumber(phoneDigits)) return ['fragment'];
  if (loginEmail) return ['email', ...(list as CodeType[]).filter((t) => t !== 'app')];
  if (list.length === 0) throw new TgError(400, 'codeTypes must not be empty');
  return list as CodeType[];
}

/** The delivery at `step` of the user's order, for the login's shared digits `base`. */
export function delivery(user: CodeUser, step: number, base: string): Delivery {
  const type = user.codeTypes[step]!;
  const nextType = user.codeTypes[step + 1];
  const length = base.length;
  const timeoutS = nextType === undefined ? undefined : user.codeTimeoutS ?? RESEND_AFTER_S[type];
  const d: Delivery = { type, code: base, length, nextType, timeoutS: timeoutS === 0 ? undefined : timeoutS };
  if (type === 'flash-call') {
    d.code = `${CALLER_PREFIX}${base}`;
    d.pattern = `+${CALLER_PREFIX}${'*'.repeat(length)}`;
  } else if (type === 'missed-call') {
    d.prefix = `+${CALLER_PREFIX}`;
  } else if (type === 'email') {
    d.emailPattern = maskEmail(user.loginEmail ?? '');
  } else if (type === 'fragment') {
    d.url = `https://fragment.com/number/${user.phone}/code`;
  }
  return d;
}

/** "alice@example.com" → "a****@e******.com": enough for the owner to recognise, not to read. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const dot = domain.lastIndexOf('.');
  const host = dot > 0 ? domain.slice(0, dot) : domain;
  const tld = dot > 0 ? domain.slice(dot) : '';
  const mask = (s: string) => `${s.slice(0, 1)}${'*'.repeat(Math.max(s.length - 1, 1))}`;
  return `${mask(local)}@${mask(host)}${tld}`;
}

/** A plausible e-mail address (control API input), or a 400. */
export function checkEmail(email: unknown, field: string): string | undefined {
  if (email === undefined || email === null || email === '') return undefined;
  if (typeof email !== 'string' || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw new TgError(400, `${field} must be an e-mail address`);
  return email;
}
