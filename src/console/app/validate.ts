// Client-side checks that catch typos before a round trip; the server stays the authority and its
// answers are shown next to the field as well.

export type Check = { ok: true; value: string } | { ok: false; message: string };

// E.164: a "+", a country code that does not start with 0, and at most 15 digits in all; the
// shortest real numbers (e.g. Niue) have 7 digits with the country code.
export const checkPhone = (input: string): Check => {
  const compact = input.replace(/[\s().-]/g, '');
  if (compact === '') return { ok: false, message: 'Enter a phone number' };
  if (!compact.startsWith('+')) return { ok: false, message: 'Start with + and the country code, e.g. +44 7700 900123' };
  if (!/^\+[1-9]\d{6,14}$/.test(compact)) return { ok: false, message: 'Use 7 to 15 digits after the +, nothing else' };
  return { ok: true, value: compact };
};

// Telegram sends 5-digit codes; 4 to 8 digits leaves room for its variants without accepting junk.
export const checkCode = (input: string): Check => {
  const code = input.replace(/\s/g, '');
  return /^\d{4,8}$/.test(code) ? { ok: true, value: code } : { ok: false, message: 'The code is 4 to 8 digits' };
};

export const checkPassword = (input: string): Check =>
  input.length > 0 ? { ok: true, value: input } : { ok: false, message: 'Enter the two-step verification password' };

// Same pattern as the API (API.md): bot id, a colon, the secret.
export const checkBotToken = (input: string): Check => {
  const token = input.trim();
  return /^\d+:[\w-]+$/.test(token)
    ? { ok: true, value: token }
    : { ok: false, message: 'A bot token looks like 123456:ABC-def (from @BotFather)' };
};

// @username (5–32 letters, digits, underscores, starting with a letter), a numeric chat id, or a
// t.me link (public name or +invite); a bare "t.me/…" gets its https:// back.
export const checkChatRef = (input: string): Check => {
  const ref = input.trim();
  if (ref === '') return { ok: false, message: 'Enter @username, a chat id or a t.me link' };
  if (/^@[A-Za-z][A-Za-z0-9_]{4,31}$/.test(ref)) return { ok: true, value: ref };
  if (/^-?\d{1,20}$/.test(ref)) return { ok: true, value: ref };
  const link = ref.match(/^(?:https?:\/\/)?(?:t\.me|telegram\.me)\/((?:\+|joinchat\/)?[\w-]+)\/?$/);
  if (link) return { ok: true, value: `https://t.me/${link[1]}` };
  return { ok: false, message: 'Use @username, a numeric id like -1001234567890, or https://t.me/…' };
};

// API.md: 1..4096 characters, counted as the server counts them (UTF-16 code units).
export const maxMessageLength = 4096;
export const checkMessageText = (input: string): Check => {
  if (input.trim() === '') return { ok: false, message: 'Write a message' };
  if (input.length > maxMessageLength) return { ok: false, message: `At most ${maxMessageLength} characters (now ${input.length})` };
  return { ok: true, value: input };
};
