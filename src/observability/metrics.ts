import client from 'prom-client';

// One registry for the process. Label sets are bounded: never a label per connection id on a
// high-volume series; per-connection memory is exported for the top 20 only.
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

const reg = [registry];

export const metrics = {
  sessionsActive: new client.Gauge({
    name: 'telegram_sessions_active', help: 'Telegram connections currently active', labelNames: ['kind'], registers: reg,
  }),
  sessionDuration: new client.Histogram({
    name: 'telegram_session_duration_seconds', help: 'How long a connection stayed active before it left active',
    labelNames: ['kind'], buckets: [1, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600], registers: reg,
  }),
  apiLatency: new client.Histogram({
    name: 'telegram_api_latency_seconds', help: 'Latency of calls to Telegram by method and outcome',
    labelNames: ['method', 'outcome'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: reg,
  }),
  messagesSent: new client.Counter({
    name: 'telegram_messages_sent_total', help: 'Messages handed to Telegram by connection kind and final status',
    labelNames: ['kind', 'status'], registers: reg,
  }),
  connectionsByState: new client.Gauge({
    name: 'integration_connections', help: 'Connections per state and kind', labelNames: ['state', 'kind'], registers: reg,
  }),
  actorRestarts: new client.Counter({
    name: 'integration_actor_restarts_total', help: 'Actor restarts by the supervisor', labelNames: ['kind', 'reason'], registers: reg,
  }),
  breakerState: new client.Gauge({
    name: 'integration_breakers', help: 'Circuit breakers per state', labelNames: ['state'], registers: reg,
  }),
  breakerOpened: new client.Counter({
    name: 'integration_breaker_opened_total', help: 'Times a connection breaker opened', registers: reg,
  }),
  memoryBytes: new client.Gauge({
    name: 'integration_connection_memory_bytes', help: 'Accounted bytes of the 20 largest connections',
    labelNames: ['connection'], registers: reg,
  }),
  memoryBytesTotal: new client.Gauge({
    name: 'integration_connections_memory_bytes_total', help: 'Accounted bytes of all connections', registers: reg,
  }),
  shardsHeld: new client.Gauge({
    name: 'integration_shards_held', help: 'Shard leases this node holds', registers: reg,
  }),
  selfFences: new client.Counter({
    name: 'integration_lease_self_fences_total', help: 'Shards this node stopped because their lease deadline passed without a renewal', registers: reg,
  }),
  fencedWritesRefused: new client.Counter({
    name: 'integration_fenced_writes_refused_total', help: 'Writes this node made for a shard whose lease had moved on, refused by the database', registers: reg,
  }),
  memoryBudgetStops: new client.Counter({
    name: 'integration_memory_budget_exceeded_total', help: 'Actors stopped for going over their memory budget', registers: reg,
  }),
  queueDepth: new client.Gauge({
    name: 'integration_queue_depth', help: 'Messages waiting to be sent, by status', labelNames: ['status'], registers: reg,
  }),
  queueOldestAge: new client.Gauge({
    name: 'integration_queue_oldest_age_seconds', help: 'Age of the oldest message not yet sent', registers: reg,
  }),
  deadLetters: new client.Counter({
    name: 'integration_dead_letters_total', help: 'Messages dead-lettered after the delivery limit', registers: reg,
  }),
  acceptToSent: new client.Histogram({
    name: 'integration_message_accept_to_sent_seconds', help: 'From 202 Accepted to the platform confirming the send',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: reg,
  }),
  httpDuration: new client.Histogram({
    name: 'http_request_duration_seconds', help: 'HTTP request duration by route template, method and status',
    labelNames: ['method', 'route', 'status'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: reg,
  }),
  rateLimited: new client.Counter({
    name: 'integration_rate_limited_total', help: 'Requests refused by the per-caller rate limits', labelNames: ['group'], registers: reg,
  }),
  shed: new client.Counter({
    name: 'integration_http_shed_total', help: 'Requests answered 503 OVERLOADED because the event loop lagged past OVERLOAD_LAG_MS', registers: reg,
  }),
  keyringErrors: new client.Counter({
    name: 'integration_keyring_errors_total', help: 'Failed keyring operations (Vault transit or the local keyring) by operation and reason',
    labelNames: ['op', 'reason'], registers: reg,
  }),
  platformAuthKeyDuplicated: new client.Counter({
    name: 'integration_auth_key_duplicated_total', help: 'Platform sessions refused because the same key was live twice (Telegram AUTH_KEY_DUPLICATED)',
    labelNames: ['platform'], registers: reg,
  }),
  vaultSecretsLoaded: new client.Gauge({
    name: 'integration_vault_secrets_loaded', help: 'Static secrets (JWT_SECRET, TELEGRAM_API_HASH, app secrets) read from Vault KV at start', registers: reg,
  }),
  readiness: new client.Gauge({
    name: 'integration_ready', help: '1 when the named dependency check passes', labelNames: ['check'], registers: reg,
  }),
};
