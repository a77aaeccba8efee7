// postgres.js 3.4.9 is patched on install (ops/patches/postgres-binary-results.mjs) so that a raw query can
// ask for binary results: file pieces are read as their bytes instead of hex text (src/store/uploads.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { edits, files, patch, version } from '../../ops/patches/postgres-binary-results.mjs';
import { startEmbedded } from '../../src/store/embedded.ts';
import { testServerUrl } from '../helpers/db.ts';
import { withFakePackage } from '../helpers/fake-package.ts';

const root = join(import.meta.dirname, '../..');
const pkgDir = join(root, 'node_modules/postgres');
const binary = { prepare: true, binaryResults: true } as postgres.UnsafeQueryOptions;

test('the installed postgres.js has the option in all three copies (npm ci ran the postinstall)', () => {
  for (const file of files) {
    const text = readFileSync(join(pkgDir, file), 'utf8');
    for (const [, after] of edits) assert.ok(text.includes(after), file);
  }
  const check = spawnSync(process.execPath, [join(root, 'ops/patches/postgres-binary-results.mjs'), '--check'], { encoding: 'utf8' });
  assert.is(check.status, 0, check.stderr);
});

test('a raw query with binaryResults gets each column in binary; the same text without it, and other queries, stay text', async () => {
  // One connection: the prepared statement is shared by the binary and the text executions.
  const sql = postgres(testServerUrl, { max: 1, onnotice: () => undefined });
  try {
    const text = 'select $1::bytea as b, $2::int4 as n, $3::text as t';
    const bytes = Buffer.from([0, 1, 0x5c, 0x78, 255, 128]);
    const [bin] = await sql.unsafe<[Buffer, Buffer, Buffer][]>(text, [bytes, -7, 'zé'], binary).raw();
    assert.ok(bin![0].equals(bytes), 'bytea: the bytes themselves');
    assert.is(bin![1].readInt32BE(0), -7, 'int4: 4 bytes, big-endian');
    assert.is(bin![2].toString('utf8'), 'zé');
    const [txt] = await sql.unsafe<[Buffer, Buffer, Buffer][]>(text, [bytes, -7, 'zé'], { prepare: true }).raw();
    assert.is(txt![0].toString('latin1'), '\\x00015c78ff80', 'bytea in hex text');
    assert.is(txt![1].toString('latin1'), '-7');
    const [parsed] = await sql<{ b: Buffer; n: number }[]>`select ${bytes}::bytea as b, 5::int4 as n`;
    assert.ok(parsed!.b.equals(bytes));
    assert.is(parsed!.n, 5);
    const [again] = await sql.unsafe<[Buffer][]>('select $1::bytea', [bytes], binary).raw();
    assert.ok(again![0].equals(bytes));
  } finally {
    await sql.end();
  }
});

test('embedded mode (PGlite through pglite-socket) answers in binary too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbr-embedded-'));
  const server = await startEmbedded(join(dir, 'data'));
  const sql = postgres({ path: server.socket, user: 'postgres', database: 'postgres', max: 1, onnotice: () => undefined });
  try {
    const bytes = Buffer.from([0, 1, 0x5c, 0x78, 255, 128]);
    const [r] = await sql.unsafe<[Buffer, Buffer][]>('select substring($1::bytea from 2 for 3), length($1::bytea)', [bytes], binary).raw();
    assert.ok(r![0].equals(bytes.subarray(1, 4)));
    assert.is(r![1].readInt32BE(0), bytes.length);
  } finally {
    await sql.end();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('patch(): patches the original, is idempotent, refuses unknown text and other versions', () => {
  withFakePackage('pgbr-pkg-', (dir, write) => {
    const body = (i: 0 | 1) => `before\n${edits.map((e) => e[i]).join('middle\n')}after\n`;
    write('package.json', JSON.stringify({ version }));
    for (const file of files) write(file, body(0));
    assert.throws(() => patch(dir, { check: true }), /not patched/);
    assert.equal(patch(dir), files);
    for (const file of files) assert.is(readFileSync(join(dir, file), 'utf8'), body(1));
    assert.equal(patch(dir), [], 'idempotent');
    write(files[0]!, 'something else');
    assert.throws(() => patch(dir), /known 3\.4\.9 text/);
    write('package.json', JSON.stringify({ version: '3.4.10' }));
    assert.throws(() => patch(dir), /the patch is for 3\.4\.9/);
  });
});

test.run();
