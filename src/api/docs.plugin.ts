import Inert from '@hapi/inert';
import type { Plugin } from '@hapi/hapi';
import Vision from '@hapi/vision';
import HapiSwagger from 'hapi-swagger';

export interface DocsOptions { version: string }

/**
 * OpenAPI 3.0 at `/openapi.json` and the browsable page at `/docs`, built from the routes' Joi
 * schemas on each request, so routes registered later are included. Only routes tagged 'api' appear.
 */
export const docsPlugin: Plugin<DocsOptions> = {
  name: 'integration-docs',
  async register(server, { version }) {
    // `once`: the console plugin registers Inert too.
    await server.register([{ plugin: Inert, once: true }, { plugin: Vision, once: true }]);
    await server.register({
      plugin: HapiSwagger,
      options: {
        OAS: 'v3.0',
        jsonPath: '/openapi.json',
        documentationPath: '/docs',
        grouping: 'tags',
        // Component names come from Joi `.label()`s, so resource plugins should label their schemas.
        definitionPrefix: 'useLabel',
        info: {
          title: 'Integration Service',
          version,
          description: 'Connects a product\'s users to external platforms (Telegram first). Every failure answers '
            + '`{ error: { code, message, retryAfter?, details? } }`; codes are listed in API.md. Per-caller limits: '
            + 'connect 10/min, send 100/min, status (every GET under /v1) 1000/min, with RateLimit-* headers.',
        },
        securityDefinitions: { jwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        security: [{ jwt: [] }],
      } satisfies HapiSwagger.RegisterOptions,
    });
  },
};
