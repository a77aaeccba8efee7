// What the daemon prints on stdout once it answers, in embedded mode (`npm start` with no setup). A ready
// admin token (24 h) is a convenience of the zero-setup path only: printed when the service generated the
// JWT secret itself and stdout is a terminal someone is watching. An operator who set JWT_SECRET mints
// their own, and a stdout that goes to a file or a log collector would keep an admin credential for a day.
import { mintToken } from './auth/token.ts';
import type { Config } from './config.ts';

type BannerConfig = Pick<Config, 'embeddedDatabase' | 'dataDir' | 'jwt'>;

const tokenCommand = 'npm run token -- --sub alice --scope admin';

export function printsToken(config: BannerConfig, stdoutIsTTY: boolean): boolean {
  return config.embeddedDatabase && config.jwt.secretFile !== undefined && config.jwt.secret !== undefined && stdoutIsTTY;
}

/** The lines to print, or null outside embedded mode (a deployed daemon's stdout is its log). */
export function startBanner(config: BannerConfig, url: string, stdoutIsTTY: boolean): string | null {
  if (!config.embeddedDatabase) return null;
  const lines = ['', `  Integration Service on ${url} (embedded mode: data in ${config.dataDir})`];
  if (printsToken(config, stdoutIsTTY)) {
    const { secret, issuer, audience } = config.jwt;
    const token = mintToken({
      secret: secret!, sub: 'local-admin', scopes: ['admin'], ttlSeconds: 86_400,
      ...(issuer ? { issuer } : {}), ...(audience ? { audience } : {}),
    });
    lines.push(
      `  Console:  ${url}/#token=${token}`,
      `  API docs: ${url}/docs`,
      `  Token (local-admin, 24 h): ${token}`,
      '  More tokens: npm run token -- --sub alice [--scope admin]',
    );
  } else {
    lines.push(
      `  Console:  ${url}/ (sign in with a token)`,
      `  API docs: ${url}/docs`,
      config.jwt.secret
        ? `  Token:    ${tokenCommand} (reads JWT_SECRET, else $DATA_DIR/jwt-secret)`
        : '  Token:    from the identity provider behind JWT_JWKS_URL',
    );
  }
  return `${lines.join('\n')}\n\n`;
}
