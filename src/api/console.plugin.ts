import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Inert from '@hapi/inert';
import type { Plugin, ResponseObject } from '@hapi/hapi';
import type { Boom } from '@hapi/boom';
import { logger } from '../observability/logger.ts';

export interface ConsoleOptions {
  /** The built console (index.html, app.js, styles.css); default src/console/dist from `npm run build:console`. */
  root?: string;
}

export const defaultConsoleRoot = fileURLToPath(new URL('../console/dist', import.meta.url));

// The console is our own code only: no inline script or style, no third-party origin, no framing,
// no forms posting anywhere (they are handled by script). blob:/data: images carry the QR code.
// connect-src 'self' covers the live-events socket: CSP Level 3 matches ws:/wss: of the page's own
// host and port to 'self' (a bare `ws:` would allow sockets to any host).
export const consoleContentSecurityPolicy = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
  "connect-src 'self'", "font-src 'none'", "object-src 'none'", "frame-ancestors 'none'",
  "base-uri 'none'", "form-action 'none'",
].join('; ');

const securityHeaders: Record<string, string> = {
  'content-security-policy': consoleContentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

/**
 * Serves the web console: `/` is its page, `/console/*` its assets (no auth: they hold no data; the
 * page signs in to the API with a bearer token). Files are not content-hashed, so every answer is
 * `no-cache` (revalidated by ETag) and a deploy is seen on the next load.
 */
export const consolePlugin: Plugin<ConsoleOptions> = {
  name: 'integration-console',
  async register(server, options) {
    const root = options.root ?? defaultConsoleRoot;
    // Inert may already be there (the docs plugin registers it): share it instead of failing.
    await server.register({ plugin: Inert, once: true });

    const built = existsSync(join(root, 'index.html'));
    if (!built) logger.warn('web console is not built; `/` answers 503 until `npm run build:console` has run', { root });

    server.route({
      method: 'GET',
      path: '/',
      options: { auth: false },
      handler: (_request, h) => built
        ? h.file(join(root, 'index.html'), { confine: false })
        : h.response('The web console is not built: run `npm run build:console`.\n').code(503).type('text/plain; charset=utf-8'),
    });
    server.route({
      method: 'GET',
      path: '/console/{file*}',
      options: { auth: false },
      handler: { directory: { path: root, index: false, listing: false, redirectToSlash: false, showHidden: false } },
    });

    // Sandboxed to this plugin's routes, error answers (404 of an unknown asset) included.
    server.ext('onPreResponse', (request, h) => {
      const response = request.response as ResponseObject | Boom;
      if ('isBoom' in response && response.isBoom) Object.assign(response.output.headers, securityHeaders);
      else for (const [name, value] of Object.entries(securityHeaders)) (response as ResponseObject).header(name, value);
      return h.continue;
    }, { sandbox: 'plugin' });
  },
};
