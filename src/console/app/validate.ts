import { t } from './i18n/index.ts';
// Client-side checks that catch typos before a round trip; the server stays the authority and its
// answers are shown next to the field as well.

export type Check = { ok: true; value: string } | { ok: false; message: string };

// E.164: a "+", a country code that does not start with 0, and at most 15 digits in all; the
// shortest real numbers (e.g. Niue) have 7 digits with the country code.
export const checkPhone = (input: string): Check => {
  const compact = input.replace(/[\s().-]/g, '');
  if (compact === '') return { ok: false, message: t('check.phone.empty') };
  if (!compact.startsWith('+')) return { ok: false, message: t('check.phone.plus') };
  if (!/^\+[1-9]\d{6,14}$/.test(compact)) return { ok: false, message: t('check.phone.digits') };
  return { ok: true, value: compact };
};

// Telegram sends 5-digit codes; 4 to 8 digits leaves room for its variants without accepting junk.
export const checkCode = (input: string): Check => {
  const code = input.replace(/\s/g, '');
  return /^\d{4,8}$/.test(code) ? { ok: true, value: code } : { ok: false, message: t('check.code') };
};

export const checkPassword = (input: string): Check =>
  input.length > 0 ? { ok: true, value: input } : { ok: false, message: t('check.password') };

// Same pattern as the API (API.md): bot id, a colon, the secret.
export const checkBotToken = (input: string): Check => {
  const token = input.trim();
  return /^\d+:[\w-]+$/.test(token)
    ? { ok: true, value: token }
    : { ok: false, message: t('check.botToken') };
};

// @username (5–32 letters, digits, underscores, starting with a letter), a numeric chat id, or a
// t.me link (public name or +invite); a bare "t.me/…" gets its https:// back.
export const checkChatRef = (input: string): Check => {
  const ref = input.trim();
  if (ref === '') return { ok: false, message: t('check.chat.empty') };
  if (/^@[A-Za-z][A-Za-z0-9_]{4,31}$/.test(ref)) return { ok: true, value: ref };
  if (/^-?\d{1,20}$/.test(ref)) return { ok: true, value: ref };
  const link = ref.match(/^(?:https?:\/\/)?(?:t\.me|telegram\.me)\/((?:\+|joinchat\/)?[\w-]+)\/?$/);
  if (link) return { ok: true, value: `https://t.me/${link[1]}` };
  return { ok: false, message: t('check.chat.bad') };
};

// API.md: 1..4096 characters, counted as the server counts them (UTF-16 code units).
export const maxMessageLength = 4096;
export const checkMessageText = (input: string): Check => {
  if (input.trim() === '') return { ok: false, message: t('check.text.empty') };
  if (input.length > maxMessageLength) return { ok: false, message: t('check.text.long', { max: maxMessageLength, n: input.length }) };
  return { ok: true, value: input };
};

// WhatsApp Manager ids (phone number id, WABA id): digits only, as the API takes them (at most 20).
export const checkDigitsId = (input: string, required: boolean): Check => {
  const id = input.trim();
  if (id === '') return required ? { ok: false, message: t('check.waId.empty') } : { ok: true, value: '' };
  return /^\d{1,20}$/.test(id) ? { ok: true, value: id } : { ok: false, message: t('check.waId.digits') };
};

// A Meta access token: 10–1024 letters, digits and ._|- (the API's pattern).
export const checkAccessToken = (input: string): Check => {
  const token = input.trim();
  return /^[\w.|-]{10,1024}$/.test(token) ? { ok: true, value: token } : { ok: false, message: t('check.accessToken') };
};
