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

export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  format: logFormat,
  defaultMeta: { service: { name: 'integration-service' } },
  // Tests capture lines through their own transports; the console stays quiet under `npm test`
  // unless LOG_TESTS is set.
  transports: [new winston.transports.Console({ silent: process.env.NODE_ENV === 'test' && !process.env.LOG_TESTS })],
});
