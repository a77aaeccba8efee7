// The client's types are generated from the daemon's OpenAPI document and committed. This builds
// the daemon in-process, generates again and compares: a route or schema changed without
// `npm run client:generate` fails here, as does a hand edit of the generated file.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generatedFile, serverOpenApi, typesFrom } from '../../../clients/typescript/scripts/openapi.ts';
import { createTestDatabase } from '../../helpers/db.ts';

test('src/generated/openapi.ts is what the daemon\'s /openapi.json generates (else: npm run client:generate)', async () => {
  const db = await createTestDatabase({ migrate: false });
  try {
    const doc = await serverOpenApi(db.url);
    const committed = readFileSync(generatedFile, 'utf8');
    const fresh = await typesFrom(doc);
    if (fresh !== committed) {
      const a = committed.split('\n');
      const b = fresh.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      assert.unreachable(`generated types are stale at line ${line + 1}:\n  committed: ${a[line]}\n  document:  ${b[line]}\nrun: npm run client:generate`);
    }
    // Each route the client calls by its typed path is in the document.
    const paths = Object.keys(doc.paths as object);
    for (const p of ['/v1/connections', '/v1/connections/{id}/code', '/v1/connections/{id}/chats', '/v1/messages', '/admin/actors']) {
      assert.ok(paths.includes(p), `${p} missing from /openapi.json`);
    }
  } finally {
    await db.drop();
  }
});

test('the comparison fails on a document that differs', async () => {
  const committed = readFileSync(generatedFile, 'utf8');
  const doc = { openapi: '3.0.0', info: { title: 't', version: '1' }, paths: { '/v1/other': { get: { responses: { 200: { description: 'ok' } } } } } };
  assert.is.not(await typesFrom(doc), committed);
});

test.run();
