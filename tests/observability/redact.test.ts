import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { maskPhone, redact, redactText } from '../../src/observability/redact.ts';

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

test.run();
