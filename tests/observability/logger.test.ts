import { Writable } from 'node:stream';
import winston from 'winston';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { logger } from '../../src/observability/logger.ts';

// Captures what the process logger writes, through its own format (redaction + ECS).
const lines: string[] = [];
const capture = new winston.transports.Stream({
  stream: new Writable({ write(chunk, _e, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done(); } }),
});
logger.add(capture);
const last = () => JSON.parse(lines.at(-1)!) as Record<string, any>;

const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.abcdefghijklmnop';
const session = `1${Buffer.alloc(263, 9).toString('base64')}`;

test('lines are ECS JSON', () => {
  logger.info('hello', { connection: { id: 'c-1' } });
  const e = last();
  assert.is(e.message, 'hello');
  assert.is(e['log.level'], 'info');
  assert.ok(e['@timestamp'] && e['ecs.version']);
  assert.equal(e.connection, { id: 'c-1' });
  assert.equal(e.service, { name: 'integration-service' });
});

test('meta fields, nested objects and messages are redacted', () => {
  logger.warn(`login of +447700900123 with code 12345 failed; token ${jwt}`, {
    login: { phone: '+447700900123', code: '12345', password: 'hunter2', twoFa: { password: 'again' } },
    sessions: [{ session }],
    headers: { authorization: `Bearer ${jwt}` },
  });
  const raw = lines.at(-1)!;
  for (const leaked of ['hunter2', 'again', jwt, session.slice(0, 40), '7700900', '"12345"']) assert.not.ok(raw.includes(leaked), `${leaked.slice(0, 20)} leaked`);
  const e = JSON.parse(raw);
  assert.is(e.login.phone, '+44******0123');
  assert.is(e.login.password, '[REDACTED]');
});

test('errors: message, stack trace and cause are redacted in error.*', () => {
  const err = new Error(`GramJS said AUTH_KEY for session ${session}`, { cause: new Error(`bot ${'123456789'}:${'A'.repeat(35)}`) });
  logger.error('connect failed', { err });
  const raw = lines.at(-1)!;
  assert.not.ok(raw.includes(session.slice(0, 40)));
  assert.not.ok(raw.includes('A'.repeat(35)));
  const e = JSON.parse(raw);
  assert.is(e.error.type, 'Error');
  assert.match(e.error.message, /\[REDACTED\]/);
  assert.match(e.error.stack_trace, /^Error: GramJS said AUTH_KEY for session \[REDACTED\]/);
});

test('logging an Error directly and child loggers are redacted too', () => {
  logger.error(new Error(`password=hunter2 for ${jwt}`));
  assert.not.ok(lines.at(-1)!.includes('hunter2'));
  assert.not.ok(lines.at(-1)!.includes(jwt));
  logger.child({ http: { request: { id: 'r-1' } }, botToken: 'raw-token' }).info('child');
  const e = last();
  assert.is(e.http.request.id, 'r-1');
  assert.is(e.botToken, '[REDACTED]');
});

test('OpenTelemetry ids land in the ECS trace fields', () => {
  logger.info('traced', { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7', trace_flags: '01' });
  const e = last();
  assert.equal(e.trace, { id: '4bf92f3577b34da6a3ce929d0e0e4736' });
  assert.equal(e.span, { id: '00f067aa0ba902b7' });
  assert.is(e.trace_id, undefined);
});

test.after(() => { logger.remove(capture); });
test.run();
