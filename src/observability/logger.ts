import { ecsFields, ecsStringify } from '@elastic/ecs-winston-format';
import winston from 'winston';
import { redactFormat } from './redact.ts';

// One JSON line per entry in Elastic Common Schema. Redaction sits between the ECS field mapping
// (which turns Error objects into `error.message`/`error.stack_trace` strings) and the stringify
// step, so every field of every line, stack traces included, is scrubbed before it is written.
// OpenTelemetry's winston instrumentation injects `trace_id`/`span_id`/`trace_flags`; ECS (and
// Kibana's log-to-trace links) read `trace.id`/`span.id`.
const otelToEcs = winston.format((info) => {
  const fields = info as Record<string, unknown>;
  if (typeof fields.trace_id === 'string') fields.trace = { id: fields.trace_id };
  if (typeof fields.span_id === 'string') fields.span = { id: fields.span_id };
  delete fields.trace_id;
  delete fields.span_id;
  delete fields.trace_flags;
  return info;
});

export const logFormat = winston.format.combine(otelToEcs(), ecsFields({ convertReqRes: false }), redactFormat(), ecsStringify());

// For a person at a terminal: `07:06:37 WARN  circuit breaker opened  connectionId=… retryAt=…`, the
// same fields, redacted by the same step; ELK and `docker logs` pipelines keep getting ECS JSON.
const hidden = new Set(['@timestamp', 'ecs.version', 'log.level', 'message', 'service', 'level']);
const colours: Record<string, string> = { error: '\x1b[31m', warn: '\x1b[33m', info: '\x1b[36m', debug: '\x1b[90m' };
const flat = (value: unknown, prefix: string, out: string[]): void => {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flat(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  out.push(`${prefix}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`);
};
const prettyLine = (colour: boolean) => winston.format.printf((info) => {
  const fields = info as Record<string, unknown>;
  const level = String(fields['log.level'] ?? info.level);
  const time = String(fields['@timestamp'] ?? new Date().toISOString()).slice(11, 19);
  const rest: string[] = [];
  for (const [k, v] of Object.entries(fields)) if (!hidden.has(k)) flat(v, k, rest);
  const tag = level.toUpperCase().padEnd(5);
  return `${time} ${colour ? `${colours[level] ?? ''}${tag}\x1b[0m` : tag} ${String(info.message)}${rest.length ? `  ${rest.join(' ')}` : ''}`;
});
export const prettyFormat = (colour = false) => winston.format.combine(otelToEcs(), ecsFields({ convertReqRes: false }), redactFormat(), prettyLine(colour));

export type LogFormatName = 'json' | 'pretty';
/**
 * LOG_FORMAT, else pretty for a terminal and JSON for everything else (pipes, files, containers).
 * The daemon's entry points pass their stdout's isTTY; a library user of startApp (the tests) keeps JSON.
 */
export const logFormatFor = (name: LogFormatName | undefined, isTTY = false) =>
  (name ?? (isTTY ? 'pretty' : 'json')) === 'pretty' ? prettyFormat(isTTY) : logFormat;

export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  format: logFormatFor(process.env.LOG_FORMAT === 'json' || process.env.LOG_FORMAT === 'pretty' ? process.env.LOG_FORMAT : undefined),
  defaultMeta: { service: { name: 'integration-service' } },
  // Tests capture lines through their own transports; the console stays quiet under `npm test`
  // unless LOG_TESTS is set.
  transports: [new winston.transports.Console({ silent: process.env.NODE_ENV === 'test' && !process.env.LOG_TESTS })],
});
