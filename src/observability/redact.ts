import { getCountries, getCountryCallingCode } from 'libphonenumber-js';
import winston from 'winston';

// Every log line passes through `redactFormat`; `redact` and `maskPhone` are reused wherever a value
// may leave the process (error answers, readiness errors, admin snapshots).

const REDACTED = '[REDACTED]';

// Key names compared lower-cased with `_`/`-`/`.` removed, so `auth_key`, `Auth-Key`, `authKey` all match.
const secretKey = /password|passwd|passcode|token|secret|session|authkey|authorization|apihash|apikey|privatekey|jwt|cookie|credential|phonecode|logincode/;
const phoneKey = /phone/;
// `code` alone is ambiguous: error codes (TG_API_429, ECONNREFUSED) must stay readable, login codes
// (Telegram sends 5 digits, some flows 6) must not. Numeric-only values under a `code` key are redacted.
const loginCodeValue = /^\s*\d{4,8}\s*$/;

// Every rule is linear in the text: a V8 regex tries each start position, so a rule whose failing
// attempts scan to the end of the input is quadratic ('a.a.a…' against an unbounded URL scheme, or
// 'eyJ-eyJ-…' against the JWT rule, held the loop 3.5 s on one 80 KB request). Here each attempt stops
// at a character that begins the next attempt, or is anchored by a lookbehind to the start of a run;
// tests/regex-safety.test.ts runs every regex of src/ through a ReDoS checker.
const textRules: Array<[RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // `Bearer <anything>` first, so the token after it is gone whatever its shape.
  [/\b(Bearer)\s+[^\s"',;]+/gi, `$1 ${REDACTED}`],
  // JWTs: base64url header starting `{"` → `eyJ`; the signature may be empty (alg none). No word
  // boundary before it: tokens get glued to prefixes (`access_token=eyJ…`, `tokeneyJ…`). The regex
  // takes each whole run of [\w.-] that holds `eyJ` (one attempt per run), redactJwts finds the tokens.
  [/(?<![\w.-])[\w.-]*eyJ[\w.-]*/g, (run) => redactJwts(run)],
  // Bot API tokens: bot id (6+ digits) ':' 35 url-safe chars in practice; 30 leaves margin.
  // No word boundary either: Bot API URLs read `/bot123456789:AA…/sendMessage`.
  [/(?<!\d)\d{6,}:[\w-]{30,}/g, REDACTED],
  // GramJS StringSession: version char "1" + base64 of dc id, address, port and a 256-byte auth key
  // (~350 chars); 300 keeps ordinary base64 blobs readable. A failing attempt reads < 300 chars.
  [/(?<![A-Za-z0-9+/=])1[A-Za-z0-9+/=_-]{300,}/g, REDACTED],
  // Credentials inside URLs (postgres://user:pass@host, amqp://guest:guest@...). Anchored on `://`
  // rather than on the scheme: an unbounded scheme made every `.`-separated word a start.
  [/:\/\/([^\s:/@]*):[^\s@/]*@/g, `://$1:${REDACTED}@`],
  // `password=…`, `token: …`, `"secret":"…"` inside messages, query strings and serialised JSON.
  // Preceded by no letter or digit, so `access_token=` and `bot_token:` count but `tokens: 3` does not.
  [/(?<![A-Za-z0-9])(pass(?:word|wd|code)?|secret|token|session|auth_?key|api_?hash|jwt|cookie)(["']?\s*[=:]\s*["']?)[^\s"',;&]+/gi, `$1$2${REDACTED}`],
  // Phone numbers in E.164 anywhere in free text (8 to 15 digits after '+').
  [/\+\d{7,15}\b/g, (m) => maskPhone(m)],
];

// Replaces every JWT in a run of [\w.-] exactly as the regex `eyJ[\w-]*\.[\w-]*\.[\w-]*` (global)
// would, without its quadratic retries: once no two dots follow an `eyJ`, none follow a later one.
function redactJwts(run: string): string {
  let out = '';
  let from = 0;
  for (;;) {
    const start = run.indexOf('eyJ', from);
    const dot1 = start < 0 ? -1 : run.indexOf('.', start + 3);
    const dot2 = dot1 < 0 ? -1 : run.indexOf('.', dot1 + 1);
    if (dot2 < 0) return out + run.slice(from);
    const dot3 = run.indexOf('.', dot2 + 1);
    const end = dot3 < 0 ? run.length : dot3;
    out += run.slice(from, start) + REDACTED;
    from = end;
  }
}

// What one string may carry into a log line or an error answer: 16 KiB holds any stack trace with its
// causes and is where Docker's json-file driver splits a line anyway. The rest is dropped, never
// shown, so it cannot leak; a key name of 1 MiB costs the rules 16 KiB.
const maxText = 16 * 1024;
// A cut inside a token would leave a head the rules no longer recognise (a bot token's first 20
// characters). Cutting at whitespace, which ends every rule's match, avoids that when there is any
// in the last 512 characters (longer than any token but sessions and JWTs, whose heads still match).
const cutWindow = 512;

function capped(text: string): string {
  if (text.length <= maxText) return text;
  const tail = text.slice(maxText - cutWindow, maxText);
  const space = Math.max(tail.lastIndexOf(' '), tail.lastIndexOf('\n'), tail.lastIndexOf('\t'));
  let cut = space >= 0 ? maxText - cutWindow + space : maxText;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut -= 1; // never split a surrogate pair
  return `${text.slice(0, cut)} …[${text.length - cut} more characters]`;
}

// ITU calling codes are prefix-free (1 to 3 digits), so the first known prefix is the code. A set
// lookup instead of a full libphonenumber parse: ~1 µs instead of ~150 µs on every logged phone.
const callingCodes: ReadonlySet<string> = new Set(getCountries().map((c) => getCountryCallingCode(c)));

/** `+447700900123` → `+44******0123`: the country code and the last 4 digits stay, the rest is starred. */
export function maskPhone(phone: string): string {
  const digits = String(phone).replace(/\D/g, '');
  if (digits.length < 7) return '***';
  const cc = [1, 2, 3].map((n) => digits.slice(0, n)).find((prefix) => callingCodes.has(prefix)) ?? '';
  const national = digits.slice(cc.length);
  return `+${cc}${'*'.repeat(Math.max(national.length - 4, 2))}${national.slice(-4)}`;
}

/** Redacts secrets in any string; past 16 KiB the rest is replaced by a marker. */
export function redactText(input: string): string {
  const text = capped(input);
  // Every rule needs one of these characters (or the word Bearer, or 300+ chars of session): most
  // ids, routes and states skip the ~7 regex passes (~5 µs) entirely.
  if (text.length < 300 && !/[.:=@+]|bearer/i.test(text)) return text;
  let out = text;
  for (const [rx, replacement] of textRules) {
    out = typeof replacement === 'string' ? out.replace(rx, replacement) : out.replace(rx, replacement);
  }
  return out;
}

/** redactText cut to `max` characters with an ellipsis: for names a caller chose (body keys) echoed back. */
export function redactName(name: string, max = 64): string {
  const out = redactText(name);
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

type KeyKind = 'secret' | 'phone' | 'code' | 'plain';
// Log lines reuse a small set of field names; classifying each once saves two regex tests and a
// normalisation per field per line. Bounded so keys built from data cannot grow it without limit.
const keyKinds = new Map<string, KeyKind>();

function kindOf(key: string): KeyKind {
  let kind = keyKinds.get(key);
  if (kind !== undefined) return kind;
  const k = key.toLowerCase().replace(/[-_.\s]/g, '');
  kind = secretKey.test(k) ? 'secret' : phoneKey.test(k) ? 'phone' : k === 'code' ? 'code' : 'plain';
  if (keyKinds.size < 2_000) keyKinds.set(key, kind);
  return kind;
}

function redactEntry(key: string, value: unknown, seen: WeakMap<object, unknown>, depth: number): unknown {
  if (value === undefined || value === null) return value;
  const kind = kindOf(key);
  if (kind === 'secret') return typeof value === 'boolean' ? value : REDACTED;
  if (kind === 'code' && (typeof value === 'number' || (typeof value === 'string' && loginCodeValue.test(value)))) return REDACTED;
  if (kind === 'phone' && (typeof value === 'string' || typeof value === 'number')) return maskPhone(String(value));
  return walk(value, seen, depth);
}

function walk(value: unknown, seen: WeakMap<object, unknown>, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return seen.get(value) ?? '[Circular]';
  // Deeper than this is a data dump, not a log field; 8 covers ECS's own nesting (http.request.body).
  if (depth > 8) return '[Truncated]';
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.constructor.name} ${(value as Uint8Array).byteLength} bytes]`;
  if (value instanceof Date) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(walk(item, seen, depth + 1));
    return out;
  }
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  if (value instanceof Error) {
    // Own enumerable fields of an error (code, retryAfter, details) plus the non-enumerable ones.
    out.type = value.name;
    out.message = redactText(value.message);
    if (value.stack) out.stack = redactText(value.stack);
    if (value.cause !== undefined) out.cause = walk(value.cause, seen, depth + 1);
  }
  for (const [key, item] of Object.entries(value)) out[key] = redactEntry(key, item, seen, depth + 1);
  return out;
}

/** A deep copy of `value` with secrets replaced, phone numbers masked and errors turned into plain objects. */
export function redact<T>(value: T): T {
  return walk(value, new WeakMap(), 0) as T;
}

/**
 * Winston format that rewrites every string-keyed field of the log entry in place (winston keeps its
 * own state under Symbol keys, which stay untouched). Place it after any format that adds fields.
 */
export const redactFormat = winston.format((info) => {
  const seen = new WeakMap<object, unknown>();
  for (const key of Object.keys(info)) {
    if (key === 'level') continue;
    (info as Record<string, unknown>)[key] = redactEntry(key, info[key], seen, 0);
  }
  return info;
});
