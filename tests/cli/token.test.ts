import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Jwt from '@hapi/jwt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { callerOf } from '../../src/api/server.ts';
import { mintToken } from '../../src/auth/token.ts';
import { bearer, secret, shellServer } from '../api/shell-server.ts';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/token.ts', ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } })
    .then(({ stdout }) => ({ code: 0, stdout: stdout.trim(), stderr: '' }))
    .catch((err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout.trim(), stderr: err.stderr }));

const srv = await shellServer({ auth: { secret, issuer: 'https://issuer.test', audience: 'integration' } });
srv.server.route({ method: 'GET', path: '/admin/whoami', handler: (r) => callerOf(r) });
await srv.server.initialize();
const whoami = (token: string) => srv.server.inject({ url: '/admin/whoami', headers: bearer(token) });
const issuerEnv = { JWT_SECRET: secret, JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'integration' };

test('CLI round trip: the minted token is accepted by the server, with its scope', async () => {
  const out = await cli(['--sub', 'alice', '--scope', 'admin', '--ttl', '120'], issuerEnv);
  assert.is(out.code, 0, out.stderr);
  const payload = Jwt.token.decode(out.stdout).decoded.payload as Record<string, number | string>;
  assert.is(payload.sub, 'alice');
  assert.is(Number(payload.exp) - Number(payload.iat), 120);
  const res = await whoami(out.stdout);
  assert.is(res.statusCode, 200);
  assert.equal(res.result, { sub: 'alice', scopes: ['admin'], isAdmin: true });
});

test('CLI falls back to $DATA_DIR/jwt-secret when JWT_SECRET is unset', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'token-cli-'));
  const file = join(dir, 'jwt-secret');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  const env = { DATA_DIR: dir, JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'integration' };
  const out = await cli(['--sub', 'bob', '--scope', 'admin'], env);
  assert.is(out.code, 0, out.stderr);
  assert.is((await whoami(out.stdout)).statusCode, 200);
  // Readable by others: refused, as the daemon refuses it.
  chmodSync(file, 0o644);
  const open = await cli(['--sub', 'bob', '--scope', 'admin'], env);
  rmSync(dir, { recursive: true, force: true });
  assert.is(open.code, 2);
  assert.is(open.stdout, '');
  assert.is(open.stderr, `JWT secret file ${file} has mode 0644: it is readable by group/others, refusing to use it; run chmod 600 ${file}\n`);
});

test('a token for another issuer or secret is refused by the server', async () => {
  const other = await cli(['--sub', 'eve', '--scope', 'admin'], { ...issuerEnv, JWT_ISSUER: 'https://elsewhere.test' });
  assert.is((await whoami(other.stdout)).statusCode, 401);
  const wrongKey = await cli(['--sub', 'eve', '--scope', 'admin'], { ...issuerEnv, JWT_SECRET: 'a-different-secret-of-enough-length-000' });
  assert.is((await whoami(wrongKey.stdout)).statusCode, 401);
});

test('CLI refuses bad input with exit code 2 and prints no token', async () => {
  const noSub = await cli([], issuerEnv);
  assert.is(noSub.code, 2);
  assert.match(noSub.stderr, /usage/);
  const badTtl = await cli(['--sub', 'a', '--ttl', '-5'], issuerEnv);
  assert.is(badTtl.code, 2);
  const tooLong = await cli(['--sub', 'a', '--ttl', '86401'], issuerEnv);
  assert.is(tooLong.code, 2);
  assert.match(tooLong.stderr, /JWT_MAX_LIFETIME_S \(86400\)/);
  assert.is(tooLong.stdout, '');
  assert.is((await cli(['--sub', 'a', '--ttl', '86401'], { ...issuerEnv, JWT_MAX_LIFETIME_S: '604800' })).code, 0);
  const dir = mkdtempSync(join(tmpdir(), 'token-cli-'));
  const noSecret = await cli(['--sub', 'a'], { DATA_DIR: dir });
  rmSync(dir, { recursive: true, force: true });
  assert.is(noSecret.code, 2);
  assert.match(noSecret.stderr, /JWT_SECRET/);
  assert.is(noSecret.stdout, '');
});

test('mintToken: expiry follows the injected clock; expired tokens are refused', async () => {
  const token = mintToken({ secret, sub: 'carol', scopes: ['admin', 'ops'], ttlSeconds: 60, issuer: 'https://issuer.test', audience: 'integration', now: Date.now() - 3_600_000 });
  const payload = Jwt.token.decode(token).decoded.payload as Record<string, unknown>;
  assert.is(payload.scope, 'admin ops');
  const res = await whoami(token);
  assert.is(res.statusCode, 401);
  assert.is((res.result as any).error.message, 'token expired');
  assert.throws(() => mintToken({ secret, sub: '' }));
});

test.after(() => srv.server.stop());
test.run();
