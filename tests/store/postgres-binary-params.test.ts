// postgres.js 3.4.9 is patched on install (ops/patches/postgres-binary-params.mjs) so that a bytea parameter
// goes to Postgres as its bytes (binary format) instead of hex text: an upload's 1 MiB chunks
// (src/media/files.ts) are copied once into the message instead of becoming 2 MiB strings.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { edits, files, patch, version } from '../../ops/patches/postgres-binary-params.mjs';
import { startEmbedded } from '../../src/store/embedded.ts';
import { testServerUrl } from '../helpers/db.ts';
import { withFakePackage } from '../helpers/fake-package.ts';

const root = join(import.meta.dirname, '../..');
const pkgDir = join(root, 'node_modules/postgres');
const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

test('the installed postgres.js has the change in all six files (npm ci ran the postinstall)', () => {
  for (const file of files) {
    const text = readFileSync(join(pkgDir, file), 'utf8');
    for (const [, after] of edits[file.endsWith('bytes.js') ? 'bytes.js' : 'connection.js']) assert.ok(text.includes(after), file);
  }
  const check = spawnSync(process.execPath, [join(root, 'ops/patches/postgres-binary-params.mjs'), '--check'], { encoding: 'utf8' });
  assert.is(check.status, 0, check.stderr);
});

// postgres.js hands its debug hook the parameter array that Bind then serialises in place: a text
// parameter is replaced there by its text, a binary one stays the Buffer it was.
function recording() {
  const seen: unknown[][] = [];
  const sql = postgres(testServerUrl, { max: 1, onnotice: () => undefined, debug: (_c, _q, params) => { seen.push(params as unknown[]); } });
  return { sql, seen };
}

test('a bytea parameter goes as its bytes (every byte value, empty, 3 MiB, beside text and int parameters, prepared or not); other parameters stay text', async () => {
  const { sql, seen } = recording();
  try {
    const big = Buffer.alloc(3 * 1024 * 1024, 0x5c);
    big[12345] = 0;
    const [r] = await sql<{ a: Buffer; n: number; t: string; e: Buffer; l: number; z: Buffer | null }[]>`
      select ${everyByte}::bytea as a, ${-7}::int4 as n, ${'zé\\x'}::text as t, ${Buffer.alloc(0)}::bytea as e,
             length(${big}::bytea) as l, ${null}::bytea as z`;
    assert.ok(r!.a.equals(everyByte));
    assert.is(r!.n, -7);
    assert.is(r!.t, 'zé\\x');
    assert.is(r!.e.length, 0);
    assert.is(r!.l, big.length);
    assert.is(r!.z, null);
    const params = seen.at(-1)!;
    assert.ok(params[0] instanceof Uint8Array, 'the bytea went binary (not replaced by its hex text)');
    assert.is(typeof params[1], 'string', 'an int4 went as text');
    const [h] = await sql.unsafe<{ h: string }[]>('select md5($1::bytea) as h, $2::text as t', [big, 'x'], { prepare: false });
    const [again] = await sql.unsafe<{ h: string }[]>('select md5($1::bytea) as h', [big], { prepare: true });
    const expected = (await import('node:crypto')).createHash('md5').update(big).digest('hex');
    assert.is(h!.h, expected);
    assert.is(again!.h, expected);
    // Stored and read back through a table, as file chunks are.
    await sql`create temporary table pgbp (id int primary key, b bytea not null)`;
    await sql`insert into pgbp ${sql([{ id: 1, b: everyByte }, { id: 2, b: big }])}`;
    await sql`update pgbp set b = ${everyByte.subarray(10, 20)} where id = ${1}`;
    const rows = await sql<{ id: number; b: Buffer }[]>`select id, b from pgbp order by id`;
    assert.ok(rows[0]!.b.equals(everyByte.subarray(10, 20)));
    assert.ok(rows[1]!.b.equals(big));
    // bytea[] is an array parameter (its own type): unchanged, text.
    const [arr] = await sql<{ n: number }[]>`select array_length(${sql.array([everyByte, everyByte], 17)}::bytea[], 1) as n`;
    assert.is(arr!.n, 2);
  } finally {
    await sql.end();
  }
});

test('embedded mode (PGlite through pglite-socket) takes binary bytea parameters too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgbp-embedded-'));
  const server = await startEmbedded(join(dir, 'data'));
  const sql = postgres({ path: server.socket, user: 'postgres', database: 'postgres', max: 1, onnotice: () => undefined });
  try {
    const [r] = await sql<{ b: Buffer; l: number; t: string }[]>`select ${everyByte}::bytea as b, length(${everyByte}::bytea) as l, ${'ok'}::text as t`;
    assert.ok(r!.b.equals(everyByte));
    assert.is(r!.l, 256);
    assert.is(r!.t, 'ok');
  } finally {
    await sql.end();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('patch(): patches the original, is idempotent, refuses unknown text and other versions', () => {
  withFakePackage('pgbp-pkg-', (dir, write) => {
    const body = (file: string, i: 0 | 1) => `before\n${edits[file.endsWith('bytes.js') ? 'bytes.js' : 'connection.js'].map((e) => e[i]).join('middle\n')}after\n`;
    write('package.json', JSON.stringify({ version }));
    for (const file of files) write(file, body(file, 0));
    assert.throws(() => patch(dir, { check: true }), /not patched/);
    assert.equal(patch(dir), files);
    for (const file of files) assert.is(readFileSync(join(dir, file), 'utf8'), body(file, 1));
    assert.equal(patch(dir), [], 'idempotent');
    write(files[0]!, 'something else');
    assert.throws(() => patch(dir), /known 3\.4\.9 text/);
    write('package.json', JSON.stringify({ version: '3.4.10' }));
    assert.throws(() => patch(dir), /the patch is for 3\.4\.9/);
  });
});

test.run();
