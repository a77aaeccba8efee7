import { ecsFields, ecsStringify } from '@elastic/ecs-winston-format';
import winston from 'winston';
import { redactFormat } from './redact.ts';

// One JSON line per entry in Elastic Common Schema. Redaction sits between the ECS field mapping
// (which turns Error objects into `error.message`/`error.stack_trace` strings) and the stringify
// step, so every field of every line, stack traces included, is scrubbed before it is written.
export const logFormat = winston.format.combine(ecsFields({ convertReqRes: false }), redactFormat(), ecsStringify());

export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  format: logFormat,
  defaultMeta: { service: { name: 'integration-service' } },
  // Tests capture lines through their own transports; the console stays quiet under `npm test`
  // unless LOG_TESTS is set.
  transports: [new winston.transports.Console({ silent: process.env.NODE_ENV === 'test' && !process.env.LOG_TESTS })],
});
