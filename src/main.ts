import type { Config } from './config.ts';
import { shutdownTracing, startTracing } from './observability/tracing.ts';

// Tracing first: its instrumentations patch @hapi/hapi, http and winston as they load, so every
// other module is imported only after it (dynamically). Off without OTEL_EXPORTER_OTLP_ENDPOINT;
// a tracing set-up failure is reported and the daemon runs untraced rather than not at all.
await startTracing({ serviceName: 'integration-service' }).catch((err: Error) => {
  process.stderr.write(`tracing disabled: ${err.message}\n`);
});
const { ConfigError, describeConfig, loadConfig } = await import('./config.ts');
const { secretsFromVault } = await import('./vault-secrets.ts');
const { startApp } = await import('./app.ts');
const { startBanner } = await import('./start-banner.ts');
const { logger, logFormatFor } = await import('./observability/logger.ts');

// The daemon: validate config (one clear line and exit 1 on a bad value), start, print how to
// reach it, and stop gracefully on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS (10 s).

// JWT_SECRET, TELEGRAM_API_HASH and platform app secrets from Vault KV when VAULT_ADDR is set (env the fallback).
const vaultSecrets = await secretsFromVault(process.env).catch((err: Error) => {
  process.stderr.write(`config error: ${err.message}\n`);
  process.exit(1);
});

let config: Config;
try {
  config = loadConfig(vaultSecrets.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`config error: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

// A person at a terminal reads lines, not JSON (LOG_FORMAT overrides either way).
logger.format = logFormatFor(config.logFormat, process.stdout.isTTY === true);

const app = await startApp(config).catch((err: Error) => {
  logger.error('start-up failed', { error: err.message });
  process.stderr.write(`start-up failed: ${err.message}\n`);
  process.exit(1);
});

logger.info('integration service started', { url: app.url, config: describeConfig(config) });
if (vaultSecrets.loaded.length > 0) {
  const { metrics } = await import('./observability/metrics.ts');
  metrics.vaultSecretsLoaded.set(vaultSecrets.loaded.length);
  logger.info('secrets read from Vault KV', { names: vaultSecrets.loaded, ignored: vaultSecrets.ignored });
}

// The admin token only when the service generated the secret and a terminal shows it (src/start-banner.ts).
const banner = startBanner(config, app.url, process.stdout.isTTY === true);
if (banner) process.stdout.write(banner);

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
