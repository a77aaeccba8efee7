import Inert from '@hapi/inert';
import type { Plugin, ResponseObject } from '@hapi/hapi';
import type { Boom } from '@hapi/boom';
import Vision from '@hapi/vision';
import HapiSwagger from 'hapi-swagger';

export interface DocsOptions {
  version: string;
  /** PUBLIC_URL: the `servers` entry of the description. Without it `/`, relative to wherever it was fetched. */
  publicUrl?: string;
}

const specPath = '/openapi.json';
const uiPath = '/swaggerui/';

// hapi-swagger's own page runs inline script (so no CSP could be strict) and loads any spec named
// by `?url=` (a link to our /docs could show a forged description under our origin). Ours loads
// /openapi.json only, from a script file, with no top bar to type another URL into.
const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Integration Service API</title>
<link rel="stylesheet" href="${uiPath}swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${uiPath}swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const init = `window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(specPath)},
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  queryConfigEnabled: false,
  validatorUrl: null,
});
`;

// Swagger UI sets style attributes from script (hence 'unsafe-inline' for styles only) and draws
// icons as data: images; it fetches nothing but the spec and, with "Try it out", this API.
export const docsContentSecurityPolicy = [
  "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
  "connect-src 'self'", "font-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'",
].join('; ');

/**
 * OpenAPI 3.0 at `/openapi.json` and the browsable page at `/docs`, built from the routes' Joi
 * schemas on each request, so routes registered later are included. Only routes tagged 'api' appear.
 */
export const docsPlugin: Plugin<DocsOptions> = {
  name: 'integration-docs',
  async register(server, { version, publicUrl }) {
    // `once`: the console plugin registers Inert too.
    await server.register([{ plugin: Inert, once: true }, { plugin: Vision, once: true }]);
    await server.register({
      plugin: HapiSwagger,
      options: {
        OAS: 'v3.0',
        jsonPath: specPath,
        documentationPage: false,
        swaggerUIPath: uiPath,
        // Never derived from the request: hapi-swagger would reflect Host / X-Forwarded-Host into it. Its
        // schema takes absolute URLs only, so `/` (relative: wherever the description was fetched) is set
        // on the answer below; an empty list means the same in OpenAPI 3 but not to every tool.
        servers: publicUrl ? [{ url: publicUrl }] : [],
        grouping: 'tags',
        // Component names come from Joi `.label()`s, so resource plugins should label their schemas.
        definitionPrefix: 'useLabel',
        info: {
          title: 'Integration Service',
          version,
          description: 'Connects a product\'s users to external platforms (Telegram first). Every failure answers '
            + '`{ error: { code, message, retryAfter?, details? } }`; codes are listed in API.md. Per-caller limits: '
            + 'connect 10/min, send 100/min, status (every GET under /v1, and the live-events socket) 1000/min, '
            + 'manage (adding and removing chats, deleting connections or all data) 60/min, with RateLimit-* headers; '
            + 'before those, 6000 requests/min per client address. '
            + 'Per-caller quotas (defaults: 100 connections, 500 chats per connection, 10,000 messages not yet sent) answer '
            + '403 `QUOTA_EXCEEDED` and store nothing: 403 rather than 429 because waiting does not make room, deleting does '
            + '(or, for messages, their sending); a message still queued after MESSAGE_QUEUE_TTL_HOURS (72) ends `failed` with '
            + '`MESSAGE_EXPIRED`.',
        },
        securityDefinitions: { jwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        security: [{ jwt: [] }],
      } satisfies HapiSwagger.RegisterOptions,
    });

    const publicPage = { auth: false } as const;
    server.route({ method: 'GET', path: '/docs', options: publicPage, handler: (_r, h) => h.response(page).type('text/html; charset=utf-8') });
    server.route({ method: 'GET', path: '/docs/init.js', options: publicPage, handler: (_r, h) => h.response(init).type('text/javascript; charset=utf-8') });

    server.ext('onPreResponse', (request, h) => {
      const response = request.response as ResponseObject | Boom;
      if (request.route.path !== specPath || ('isBoom' in response && response.isBoom)) return h.continue;
      const doc = (response as ResponseObject).source;
      if (!doc || typeof doc !== 'object') return h.continue;
      if (!publicUrl) (doc as { servers?: unknown }).servers = [{ url: '/' }];
      moveAltDefinitions(doc as SpecDoc);
      return h.continue;
    });

    // Sandboxed to this plugin's routes (the page and its script), error answers included.
    server.ext('onPreResponse', (request, h) => {
      const response = request.response as ResponseObject | Boom;
      if ('isBoom' in response && response.isBoom) response.output.headers['content-security-policy'] = docsContentSecurityPolicy;
      else (response as ResponseObject).header('content-security-policy', docsContentSecurityPolicy);
      return h.continue;
    }, { sandbox: 'plugin' });
  },
};

interface SpecDoc { components?: { schemas?: Record<string, unknown> }; 'x-alt-definitions'?: Record<string, unknown> }

/**
 * hapi-swagger puts the branches of a Joi alternatives (the create-connection union, one branch per
 * platform) under a top-level `x-alt-definitions` and points `$ref`s there: not OpenAPI, so generators
 * (openapi-typescript) emit invalid code. They move into components.schemas; a name already taken by a
 * different schema gets an `Alt` suffix.
 */
export function moveAltDefinitions(doc: SpecDoc): void {
  const alt = doc['x-alt-definitions'];
  if (!alt) return;
  const schemas = (doc.components ??= {}).schemas ??= {};
  const renamed = new Map<string, string>();
  for (const [name, schema] of Object.entries(alt)) {
    let target = name;
    while (target in schemas && JSON.stringify(schemas[target]) !== JSON.stringify(schema)) target += 'Alt';
    renamed.set(name, target);
  }
  for (const [name, schema] of Object.entries(alt)) schemas[renamed.get(name)!] = schema;
  delete doc['x-alt-definitions'];
  const rewrite = (node: unknown): void => {
    if (Array.isArray(node)) { node.forEach(rewrite); return; }
    if (!node || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    const ref = obj.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/x-alt-definitions/')) {
      obj.$ref = `#/components/schemas/${renamed.get(ref.slice('#/x-alt-definitions/'.length)) ?? ''}`;
    }
    Object.values(obj).forEach(rewrite);
  };
  rewrite(doc);
}
