import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { configPath, readConfigFile, writeConfigFile } from './config.ts';
import type { Context } from './context.ts';

/** The HS256 secret: JWT_SECRET, else the one the daemon generated in embedded mode ($DATA_DIR/jwt-secret, owner-only). */
function secretFrom(env: NodeJS.ProcessEnv, file?: string): string {
  if (!file && env.JWT_SECRET) return env.JWT_SECRET;
  const path = file ?? join(resolve(env.DATA_DIR ?? './data'), 'jwt-secret');
  if (!existsSync(path)) throw new Error(`JWT_SECRET is not set and ${path} does not exist (start the daemon once in embedded mode, or set JWT_SECRET)`);
  if (statSync(path).mode & 0o077) throw new Error(`${path} is readable by others; it mints admin tokens: chmod 600 ${path}`);
  return readFileSync(path, 'utf8').trim();
}

export function tokenCommand(program: Command, ctx: () => Context): void {
  const cmd = program.command('token').description('tokens');
  cmd.command('mint').description('mint an HS256 token with the daemon\'s secret (development and operators)')
    .requiredOption('--sub <caller>', 'the caller: every resource belongs to its sub')
    .option('--scope <scopes>', 'space- or comma-separated, e.g. admin')
    .option('--ttl <seconds>', 'lifetime; the daemon refuses more than JWT_MAX_LIFETIME_S (86400)', '3600')
    .option('--secret-file <path>', 'read the secret here instead of JWT_SECRET / $DATA_DIR/jwt-secret')
    .option('--save', 'write the token (and --url) to the config file, mode 0600')
    .action(async (o: { sub: string; scope?: string; ttl: string; secretFile?: string; save?: boolean }) => {
      const c = ctx();
      const ttl = Number(o.ttl);
      const max = Number(c.env.JWT_MAX_LIFETIME_S ?? 86_400);
      if (!Number.isInteger(ttl) || ttl <= 0) throw new Error(`--ttl must be a positive whole number of seconds, got "${o.ttl}"`);
      if (ttl > max) throw new Error(`--ttl ${ttl} is longer than JWT_MAX_LIFETIME_S (${max}); the daemon would refuse the token`);
      const { default: Jwt } = await import('@hapi/jwt');
      const scopes = (o.scope ?? '').split(/[\s,]+/).filter(Boolean);
      const payload: Record<string, unknown> = { sub: o.sub, ...(scopes.length && { scope: scopes.join(' ') }), ...(c.env.JWT_ISSUER && { iss: c.env.JWT_ISSUER }), ...(c.env.JWT_AUDIENCE && { aud: c.env.JWT_AUDIENCE }) };
      const token = Jwt.token.generate(payload, { key: secretFrom(c.env, o.secretFile), algorithm: 'HS256' }, { ttlSec: ttl });
      if (o.save) {
        const path = c.flags.config ?? configPath(c.env);
        const url = c.flags.url ?? c.env.INTEGRATION_URL ?? readConfigFile(path).url ?? 'http://127.0.0.1:8080';
        writeConfigFile(path, { url, token });
        c.out.note(`saved to ${path} (mode 0600)`);
      }
      c.out.result({ token, sub: o.sub, scopes, expiresIn: ttl }, () => token);
    });
}
