// `npm run log-subject -- --sub <caller>` prints the hash that names a caller in the service's logs
// (ECS `user.hash`), to find their lines in Kibana: a support question, or a data subject's access
// request. It needs what the daemon needs to compute it — the database (the caller's salt) and the
// keyring (the key) — from the same environment, and makes nothing: a caller with no salt stored was
// never logged, or was erased (DELETE /v1/me), and then no hash can be printed (docs/security.md).
// In embedded mode (no DATABASE_URL) stop the daemon first: the data directory opens once at a time.
import { parseArgs } from 'node:util';
import winston from 'winston';
import { loadConfig } from '../config.ts';
import { openKeyring } from '../crypto/keyring.ts';
import { purposeKey } from '../crypto/purpose-keys.ts';
import { subjectHash } from '../observability/subjects.ts';
import { openDatabase } from '../store/db.ts';
import { findSalt } from '../store/log-salts.ts';
import { getPurposeKey } from '../store/purpose-keys.ts';

const usage = 'usage: npm run log-subject -- --sub <caller>';

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { values } = parseArgs({ args: argv, options: { sub: { type: 'string' }, help: { type: 'boolean' } }, strict: true });
  if (values.help || !values.sub) throw new Error(usage);
  const config = loadConfig(env);
  const quiet = winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
  const db = await openDatabase(config, quiet);
  try {
    const salt = await findSalt(db.sql, values.sub);
    if (!salt || (await getPurposeKey(db.sql, 'log-subjects')) === undefined) {
      throw new Error('no salt is stored for this caller: no log line names them (never logged, or erased with DELETE /v1/me)');
    }
    const keyring = await openKeyring({
      ...(config.vault.addr ? {
        vaultAddr: config.vault.addr, vaultToken: config.vault.token, vaultRoleId: config.vault.roleId, vaultSecretId: config.vault.secretId,
        vaultTransitMount: config.vault.transitMount, vaultKeyName: config.vault.transitKey,
      } : {}),
      ...(config.keyring.key ? { keyringKey: config.keyring.key } : {}),
      keyringFile: config.keyring.file,
      sql: db.sql,
      rotateDays: config.keyring.rotateDays,
    });
    try {
      return subjectHash(await purposeKey(db.sql, keyring, 'log-subjects'), salt, values.sub);
    } finally {
      await keyring.close();
    }
  } finally {
    await db.close();
  }
}

try {
  process.stdout.write(`${await main(process.argv.slice(2), process.env)}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 2;
}
