// The human-readable log format (LOG_FORMAT=pretty, the default when stdout is a terminal): one line
// per entry with time, level, message and the fields, redacted exactly as the JSON lines are.
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { loadConfig } from '../../src/config.ts';
import { logFormat, logFormatFor } from '../../src/observability/logger.ts';

const capture = (format: winston.Logform.Format) => {
  const lines: string[] = [];
  const log = winston.createLogger({
    level: 'debug', format, defaultMeta: { service: { name: 'integration-service' } },
    transports: [new winston.transports.Stream({ stream: new Writable({ write(c, _e, done) { lines.push(String(c).trimEnd()); done(); } }) })],
  });
  return { log, lines };
};

test('a pretty line: time, level, message, then the fields as key=value', () => {
  const { log, lines } = capture(logFormatFor('pretty'));
  log.warn('connection entered error', { connectionId: 'c-1', code: 'TG_SESSION_EXPIRED', http: { response: { status_code: 503 } } });
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d WARN {2}connection entered error {2}connectionId=c-1 code=TG_SESSION_EXPIRED http\.response\.status_code=503$/);
  assert.not.match(lines[0]!, /ecs\.version|@timestamp|service/);
});

test('secrets are redacted in pretty lines as in JSON ones', () => {
  const { log, lines } = capture(logFormatFor('pretty'));
  log.info('login of +447700900123', { password: 'hunter2', login: { phone: '+447700900123' }, header: 'Bearer abc.def.ghi' });
  assert.not.match(lines[0]!, /hunter2|7700900|abc\.def/);
  assert.match(lines[0]!, /password=\[REDACTED\]/);
});

test('JSON unless asked or on a terminal; LOG_FORMAT is validated', () => {
  assert.is(logFormatFor(undefined, false), logFormat);
  assert.is.not(logFormatFor(undefined, true), logFormat);
  assert.is(logFormatFor('json', true), logFormat);
  assert.is(loadConfig({ LOG_FORMAT: 'pretty', DATABASE_URL: 'postgres://x@127.0.0.1/db', JWT_SECRET: 'x'.repeat(32) }).logFormat, 'pretty');
  assert.throws(() => loadConfig({ LOG_FORMAT: 'xml' }), /LOG_FORMAT must be json or pretty/);
});

test.run();
