import client from 'prom-client';
import { registry } from '../observability/metrics.ts';

// Webhook delivery metrics (docs/operations.md, "Webhooks"). Labels are bounded: `result` has six
// values; per-endpoint series are limited to the 20 endpoints with the oldest pending delivery.

const reg = [registry];

/** What one attempt came to. */
export type AttemptResult = 'success' | 'http_error' | 'gone' | 'timeout' | 'network_error' | 'egress_refused';

export const webhookMetrics = {
  deliveries: new client.Counter({
    name: 'integration_webhook_deliveries_total', help: 'Webhook delivery attempts by result', labelNames: ['result'], registers: reg,
  }),
  attemptDuration: new client.Histogram({
    name: 'integration_webhook_attempt_duration_seconds', help: 'Duration of one webhook attempt (request sent to answer read)',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15], registers: reg,
  }),
  eventToDelivered: new client.Histogram({
    name: 'integration_webhook_event_to_delivered_seconds', help: 'From a delivery being queued to its 2xx answer',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200], registers: reg,
  }),
  pending: new client.Gauge({
    name: 'integration_webhook_pending', help: 'Webhook deliveries pending (due or waiting for a retry)', registers: reg,
  }),
  dueLag: new client.Gauge({
    name: 'integration_webhook_due_lag_seconds', help: 'How long the most overdue due delivery has waited past its time (dispatcher lag)', registers: reg,
  }),
  oldestPendingAge: new client.Gauge({
    name: 'integration_webhook_oldest_pending_age_seconds', help: 'Age of the oldest pending delivery, for the 20 endpoints with the oldest',
    labelNames: ['endpoint'], registers: reg,
  }),
  endpointsFailing: new client.Gauge({
    name: 'integration_webhook_endpoints_failing', help: 'Enabled endpoints whose every attempt has failed for over an hour', registers: reg,
  }),
  endpointsDisabled: new client.Counter({
    name: 'integration_webhook_endpoints_disabled_total', help: 'Endpoints disabled by the dispatcher', labelNames: ['reason'], registers: reg,
  }),
};
