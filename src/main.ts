import type { Config } from './config.ts';
import { shutdownTracing, startTracing } from './observability/tracing.ts';

// Tracing first: its instrumentations patch @hapi/hapi, http and winston as they load, so every
// other module is imported only after it (dynamically). Off without OTEL_EXPORTER_OTLP_ENDPOINT;
// a tracing set-up failure is reported and the daemon runs untraced rather than not at all.
await startTracing({ serviceName: 'integration-service' }).catch((err: Error) => {
  process.stderr.write(`tracing disabled: ${err.message}\n`);
});
const { ConfigError, describeConfig, loadConfig } = await import('./config.ts');
const { startApp } = await import('./app.ts');
const { mintToken } = await import('./auth/token.ts');
const { logger } = await import('./observability/logger.ts');

// The daemon: validate config (one clear line and exit 1 on a bad value), start, print how to
// reach it, and stop gracefully on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS (10 s).

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`config error: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const app = await startApp(config).catch((err: Error) => {
  logger.error('start-up failed', { error: err.message });
  process.stderr.write(`start-up failed: ${err.message}\n`);
  process.exit(1);
});

logger.info('integration service started', { url: app.url, config: describeConfig(config) });

if (config.embeddedDatabase && config.jwt.secret) {
  // Dev convenience only in embedded mode: a local admin token (1 day) and a console link with it.
  const token = mintToken({
    secret: config.jwt.secret, sub: 'local-admin', scopes: ['admin'], ttlSeconds: 86_400,
    ...(config.jwt.issuer ? { issuer: config.jwt.issuer } : {}), ...(config.jwt.audience ? { audience: config.jwt.audience } : {}),
  });
  process.stdout.write([
    '',
    `  Integration Service on ${app.url} (embedded mode: data in ${config.dataDir})`,
    `  Console:  ${app.url}/#token=${token}`,
    `  API docs: ${app.url}/docs`,
    `  Token (local-admin, 24 h): ${token}`,
    `  More tokens: npm run token -- --sub alice [--scope admin]`,
    '',
  ].join('\n') + '\n');
}

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info('shutting down', { signal });
  // A hard stop 1 s after the budget: a hung dependency must not keep a pod in Terminating.
  setTimeout(() => {
    logger.error('shutdown timed out; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs + 1000).unref();
  app.stop(config.shutdownTimeoutMs).then(
    // Spans of the last requests are flushed (bounded by the hard stop above) before exiting.
    () => shutdownTracing().catch(() => undefined).then(() => process.exit(0)),
    (err: Error) => {
      logger.error('shutdown failed', { error: err.message });
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
