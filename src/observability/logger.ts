import winston from 'winston';

// Minimal placeholder: the foundation work replaces this with ECS JSON and secret redaction,
// keeping the export `logger` (a winston Logger) so that every module can import it now.
export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  format: winston.format.json(),
  transports: [new winston.transports.Console({ silent: process.env.NODE_ENV === 'test' && !process.env.LOG_TESTS })],
});
