import type { Plugin } from '@hapi/hapi';
import { registry } from '../observability/metrics.ts';

/** `GET /metrics`: the process registry in Prometheus text format, for the scraper (no auth, as API.md). */
export const metricsPlugin: Plugin<void> = {
  name: 'integration-metrics',
  register(server) {
    server.route({
      method: 'GET', path: '/metrics',
      options: {
        auth: false, tags: ['api', 'service'], description: 'Prometheus metrics (text format 0.0.4)',
        plugins: { requestLog: { level: 'debug' }, rateLimit: false, 'hapi-swagger': { security: [] } },
      },
      handler: async (_request, h) => h.response(await registry.metrics()).type(registry.contentType),
    });
  },
};
