import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openKeyring } from '../../src/crypto/keyring.ts';
import { purposeKey } from '../../src/crypto/purpose-keys.ts';
import { subjectHash } from '../../src/observability/subjects.ts';
import { deleteSalt, saltOf } from '../../src/store/log-salts.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
let db: TestDatabase;
let env: Record<string, string>;
let dir: string;
test.before(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'log-subject-'));
  env = {
    PATH: process.env.PATH ?? '', DATABASE_URL: db.url, JWT_SECRET: 's'.repeat(40), DATA_DIR: dir,
    KEYRING_KEY: randomBytes(32).toString('base64'), KEYRING_FILE: join(dir, 'keyring.json'),
  };
});
test.after(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/log-subject.ts', ...args], { cwd: root, env })
    .then(({ stdout }) => ({ code: 0, stdout: stdout.trim(), stderr: '' }))
    .catch((err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout.trim(), stderr: err.stderr }));

test('prints the hash the daemon logs for a live caller; none for one never logged or erased, and makes nothing', async () => {
  // What the daemon does when it logs alice: its keyring, its purpose key, her salt.
  const keyring = await openKeyring({ keyringKey: Buffer.from(env.KEYRING_KEY!, 'base64'), keyringFile: env.KEYRING_FILE! });
  const key = await purposeKey(db.sql, keyring, 'log-subjects');
  const expected = subjectHash(key, await saltOf(db.sql, 'alice'), 'alice');
  await keyring.close();

  const out = await cli(['--sub', 'alice']);
  assert.equal([out.code, out.stdout], [0, expected], out.stderr);

  const never = await cli(['--sub', 'bob']);
  assert.is(never.code, 2);
  assert.match(never.stderr, /no salt is stored for this caller/);
  assert.is((await db.sql`select 1 from log_salts where sub = 'bob'`).length, 0, 'looking up made no salt');

  await deleteSalt(db.sql, 'alice');
  assert.is((await cli(['--sub', 'alice'])).code, 2, 'erased: nothing to print');
  assert.match((await cli([])).stderr, /usage: npm run log-subject -- --sub <caller>/);
});

test.run();
