// Dev token: `npm run token -- --sub alice [--scope admin] [--ttl 3600]` prints an HS256 JWT for
// JWT_SECRET, or for the secret the daemon generated in embedded mode ($DATA_DIR/jwt-secret).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from '../auth/token.ts';
import { notPrivate } from '../private-path.ts';

const usage = 'usage: npm run token -- --sub <caller> [--scope <scope> ...] [--ttl <seconds, default 3600>]';

function secretFrom(env: NodeJS.ProcessEnv): string {
  if (env.JWT_SECRET) return env.JWT_SECRET;
  const file = join(resolve(env.DATA_DIR ?? './data'), 'jwt-secret');
  if (existsSync(file)) {
    const refused = notPrivate(file, 'JWT secret file'); // the daemon refuses it too (src/config.ts)
    if (refused) throw new Error(refused);
    return readFileSync(file, 'utf8').trim();
  }
  throw new Error(`JWT_SECRET is not set and ${file} does not exist (start the daemon once in embedded mode, or set JWT_SECRET)`);
}

function main(argv: string[], env: NodeJS.ProcessEnv): string {
  const { values } = parseArgs({
    args: argv,
    options: { sub: { type: 'string' }, scope: { type: 'string', multiple: true }, ttl: { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
  });
  if (values.help || !values.sub) throw new Error(usage);
  const ttlSeconds = values.ttl === undefined ? 3600 : Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new Error(`--ttl must be a positive whole number of seconds, got "${values.ttl}"`);
  // The daemon refuses longer-lived tokens (src/api/auth.plugin.ts): fail here rather than print one it rejects.
  const maxTtl = Number(env.JWT_MAX_LIFETIME_S ?? 86_400);
  if (ttlSeconds > maxTtl) throw new Error(`--ttl ${ttlSeconds} is longer than JWT_MAX_LIFETIME_S (${maxTtl}); the daemon would refuse the token`);
  return mintToken({
    secret: secretFrom(env),
    sub: values.sub,
    scopes: (values.scope ?? []).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean),
    ttlSeconds,
    ...(env.JWT_ISSUER && { issuer: env.JWT_ISSUER }),
    ...(env.JWT_AUDIENCE && { audience: env.JWT_AUDIENCE }),
  });
}

try {
  process.stdout.write(`${main(process.argv.slice(2), process.env)}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 2;
}
