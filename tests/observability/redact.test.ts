import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { maskPhone, redact, redactName, redactText } from '../../src/observability/redact.ts';

const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const botToken = '1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0';
// Shape of a GramJS StringSession: "1" + base64 of dc id, ip, port and a 256-byte auth key.
const session = `1${Buffer.alloc(263, 7).toString('base64')}`;

test('maskPhone keeps the country code and the last 4 digits', () => {
  assert.is(maskPhone('+447700900123'), '+44******0123');
  assert.is(maskPhone('+1 (415) 555-2671'), '+1******2671');
  assert.is(maskPhone('+79991234567'), '+7******4567');
  assert.is(maskPhone('447700900123'), '+44******0123');
  assert.is(maskPhone('12'), '***');
});

test('secret-named keys are redacted at any depth, in arrays too', () => {
  const out = redact({
    password: 'hunter2', authKey: 'ak', auth_key: 'ak2', apiHash: 'h', session: 's', sessionString: session,
    nested: { deeper: [{ botToken: 'x', Authorization: 'Bearer abc', cookie: 'sid=1', jwt: 'j' }], client_secret: 'cs', secretId: 'id' },
    headers: { 'set-cookie': 'a=b', 'x-api-key': 'k' },
    code: '12345', phoneCode: '54321', loginCode: 99999,
    keep: 'visible', status: 'active', count: 3, ok: true,
  });
  assert.equal(out, {
    password: '[REDACTED]', authKey: '[REDACTED]', auth_key: '[REDACTED]', apiHash: '[REDACTED]', session: '[REDACTED]', sessionString: '[REDACTED]',
    nested: { deeper: [{ botToken: '[REDACTED]', Authorization: '[REDACTED]', cookie: '[REDACTED]', jwt: '[REDACTED]' }], client_secret: '[REDACTED]', secretId: '[REDACTED]' },
    headers: { 'set-cookie': '[REDACTED]', 'x-api-key': '[REDACTED]' },
    code: '[REDACTED]', phoneCode: '[REDACTED]', loginCode: '[REDACTED]',
    keep: 'visible', status: 'active', count: 3, ok: true,
  });
});

test('error codes under `code` stay readable; only login-code-looking values go', () => {
  assert.equal(redact({ code: 'TG_API_429' }), { code: 'TG_API_429' });
  assert.equal(redact({ error: { code: 'ECONNREFUSED' } }), { error: { code: 'ECONNREFUSED' } });
  assert.equal(redact({ code: ' 123456 ' }), { code: '[REDACTED]' });
});

test('phone-named keys are masked, not removed', () => {
  assert.equal(redact({ phone: '+447700900123', user: { phoneNumber: '+79991234567' } }), { phone: '+44******0123', user: { phoneNumber: '+7******4567' } });
});

test('secrets inside free text: JWTs, bot tokens, sessions, Bearer, key=value, URL passwords, phones', () => {
  const text = `login for +447700900123 with ${jwt} then bot ${botToken} session ${session} `
    + `header Authorization: Bearer opaque-token-123 url https://api.telegram.org/bot${botToken}/getMe password=hunter2 "secret":"s3" /v1/events?access_token=opaque-ws-token&x=1 amqp://guest:guestpw@rabbit:5672`;
  const out = redactText(text);
  for (const leaked of [jwt, botToken, session.slice(0, 50), 'opaque-token-123', 'opaque-ws-token', 'hunter2', '"s3"', 'guestpw', '7700900']) {
    assert.not.ok(out.includes(leaked), `${leaked.slice(0, 20)} leaked: ${out}`);
  }
  assert.ok(out.includes('+44******0123'));
  assert.ok(out.includes('amqp://guest:[REDACTED]@rabbit:5672'));
});

test('ordinary text stays as it was', () => {
  const text = 'connection c-1 moved to active after 3 attempts (chat -1001234567890, 42 ms, tokens: 3)';
  assert.is(redactText(text), text);
});

test('errors become plain objects with message, stack and cause redacted', () => {
  const cause = new Error(`session ${session}`);
  const err = Object.assign(new Error(`auth failed for ${jwt}`, { cause }), { code: 'AUTH_KEY_UNREGISTERED', authKey: 'raw' });
  const out = redact({ err }) as any;
  assert.is(out.err.type, 'Error');
  assert.is(out.err.message, 'auth failed for [REDACTED]');
  assert.ok(out.err.stack.startsWith('Error: auth failed for [REDACTED]'));
  assert.not.ok(JSON.stringify(out).includes(jwt));
  assert.not.ok(JSON.stringify(out).includes(session.slice(0, 50)));
  assert.is(out.err.code, 'AUTH_KEY_UNREGISTERED');
  assert.is(out.err.authKey, '[REDACTED]');
});

test('cycles and buffers do not break it; the input is not mutated', () => {
  const a: any = { name: 'a', token: 't', buf: Buffer.from('secret bytes') };
  a.self = a;
  const out = redact(a) as any;
  assert.is(out.self, out);
  assert.is(out.buf, '[Buffer 12 bytes]');
  assert.is(a.token, 't');
});

test('property: a JWT or bot token embedded anywhere in text never survives', () => {
  const b64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 10, maxLength: 60 });
  const filler = fc.string({ unit: fc.constantFrom(...' abc:,;"\'=\n'), maxLength: 20 });
  fc.assert(fc.property(filler, b64url, b64url, b64url, filler, fc.integer({ min: 100000, max: 9_999_999_999 }), (pre, h, p, s, post, botId) => {
    const token = `eyJ${h}.${p}.${s}`;
    const bot = `${botId}:${(h + p + s).padEnd(35, 'x').slice(0, 35)}`;
    const out = redactText(`${pre}${token}${post} ${pre}${bot}${post}`);
    return !out.includes(token) && !out.includes(bot);
  }), { numRuns: 300 });
});

// ---------------------------------------------------------------------------------------------
// Hostile sizes and shapes (issue 12: 'a.a.a…' and 'eyJ-eyJ-…' of 80 KB held the loop 3.5 s).

const cap = 16 * 1024;
const hostile: Record<string, (n: number) => string> = {
  'a.a.a…': (n) => 'a.'.repeat(n / 2),
  'eyJ-eyJ-…': (n) => 'eyJ-'.repeat(n / 4),
  'eyJ.eyJ.…': (n) => 'eyJ.'.repeat(n / 4),
  'a://a://…': (n) => 'a://'.repeat(n / 4),
  '1234567:…': (n) => '1234567:'.repeat(n / 8),
  '_1_1_1…': (n) => '_1'.repeat(n / 2),
  'password=password=…': (n) => 'password='.repeat(n / 9),
  '////…x': (n) => `${'/'.repeat(n)}x`,
};

/**
 * Characters handed to regexes while `fn` runs. A regex handed more than `limit` throws instead of
 * running: a quadratic rule on 1 MiB would take minutes, so the old code fails here at once.
 */
function regexInput(fn: () => void, limit: number): number {
  const original = RegExp.prototype[Symbol.replace];
  let chars = 0;
  RegExp.prototype[Symbol.replace] = function (this: RegExp, text: string, replacement: any) {
    chars += text.length;
    if (text.length > limit) throw new Error(`/${this.source}/ handed ${text.length} characters`);
    return original.call(this, text, replacement);
  };
  try {
    fn();
  } finally {
    RegExp.prototype[Symbol.replace] = original;
  }
  return chars;
}

test('hostile text of 1 MiB and of 2 MiB: the rules see at most 16 KiB of it, and the output is the same bounded size', () => {
  for (const [name, make] of Object.entries(hostile)) {
    const outs: string[] = [];
    for (const n of [1 << 20, 2 << 20]) {
      let out = '';
      const chars = regexInput(() => { out = redactText(`"${make(n)}" is not allowed`); }, cap + 100);
      // 7 rules, each over at most the capped text (rules see their predecessors' output, never longer).
      assert.ok(chars <= 7 * (cap + 100), `${name} ${n}: ${chars} characters handed to the rules`);
      assert.ok(out.length <= cap + 100, `${name} ${n}: ${out.length} characters out`);
      outs.push(out.replace(/\d+ more characters/, ''));
    }
    assert.is(outs[0], outs[1], name);
  }
});

test('past 16 KiB the text is cut at the last whitespace and the marker says how much was dropped', () => {
  const text = `${'word '.repeat(4000)}${'x'.repeat(10_000)}`;
  const out = redactText(text);
  const kept = out.slice(0, out.indexOf(' …['));
  assert.ok(kept.length <= cap && kept.length > cap - 512, String(kept.length));
  assert.ok(out.endsWith(` …[${text.length - kept.length} more characters]`), out.slice(-60));
  assert.is(redactText('short text'), 'short text');
  assert.is(redactText('y'.repeat(cap)), 'y'.repeat(cap));
});

test('a secret cut by the cap leaves no head behind', () => {
  // The bot token straddles the 16 KiB mark: cutting there would leave '123456789:AAHdq…' (too short
  // for the rule) in the output. The cut falls on the space before it instead.
  for (const secret of [botToken, jwt, 'password=hunter2hunter2', `amqp://guest:${'p'.repeat(40)}@rabbit`]) {
    for (const shift of [12, 20, secret.length - 3]) {
      const text = `${'filler '.repeat(Math.ceil(cap / 7)).slice(0, cap - shift)} ${secret} and more`;
      const out = redactText(text);
      // What a cut at exactly 16 KiB would keep of the secret.
      const head = secret.slice(0, shift - 1);
      assert.not.ok(out.includes(head), `${secret.slice(0, 10)} shift ${shift}: ${out.slice(-80)}`);
    }
  }
  // No whitespace in the last 512 characters: a plain cut, never through a surrogate pair.
  const emoji = redactText('😀'.repeat(cap));
  assert.not.ok(/[\ud800-\udbff]$/.test(emoji.slice(0, emoji.indexOf(' …['))));
});

test('property: the JWT scan finds exactly what the old regex found, on text only that rule can match', () => {
  // Letters e, y, J, dots, dashes and separators: no digit, '+', '=', ':' or '@' for the other rules.
  const text = fc.string({ unit: fc.constantFrom('e', 'y', 'J', 'eyJ', '.', '-', '_', 'a', ' ', ',', 'é'), maxLength: 60 });
  fc.assert(fc.property(text, (t) => redactText(t) === t.replace(/eyJ[\w-]*\.[\w-]*\.[\w-]*/g, '[REDACTED]')), { numRuns: 2000 });
});

test('URL credentials are redacted whatever the scheme looks like', () => {
  assert.is(redactText('postgres://app:s3cr3t@db:5432/x'), 'postgres://app:[REDACTED]@db:5432/x');
  assert.is(redactText('see a.b.c+d://u:p@h'), 'see a.b.c+d://u:[REDACTED]@h');
  assert.is(redactText('http://host:8080/path'), 'http://host:8080/path');
});

test('redactName: redacted, then cut with an ellipsis', () => {
  assert.is(redactName('a'.repeat(100), 64), `${'a'.repeat(64)}…`);
  assert.is(redactName(`x${jwt}`, 64), 'x[REDACTED]');
  assert.is(redactName('phone'), 'phone');
});

test.run();
