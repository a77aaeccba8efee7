import type { Plugin } from '@hapi/hapi';
import { setHeader } from './request-log.plugin.ts';

// What every answer that is not a page may do in a browser: nothing. JSON needs no CSP, but an
// answer a browser is tricked into rendering (a sniffed type, an error echoing input) then runs
// nothing and cannot be framed. The console and /docs set their own policies for their pages.
export const apiContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";

/**
 * Headers of every answer: the CSP above, and `Cache-Control: no-store` on every route that needs
 * a token (its answers, errors included, are one caller's data: no browser or proxy may keep them;
 * Hapi's default `no-cache` allows storing and revalidating). Public routes keep `no-cache`.
 * `X-Content-Type-Options: nosniff` comes from the server's `routes.security` (server.ts).
 */
export const headersPlugin: Plugin<void> = {
  name: 'integration-headers',
  register(server) {
    server.ext('onPreResponse', (request, h) => {
      setHeader(request.response, 'content-security-policy', apiContentSecurityPolicy);
      // A route under the default strategy has `auth` unset; only `auth: false` makes it public.
      if ((request.route.settings.auth as unknown) !== false) setHeader(request.response, 'cache-control', 'no-store');
      return h.continue;
    });
  },
};
