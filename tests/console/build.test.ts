import { mkdtemp, readFile, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildConsole, consoleIsStale } from '../../src/console/build.ts';

test('builds one self-contained module, and knows when a build is older than the sources', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'console-build-'));
  try {
    const out = join(dir, 'dist');
    assert.ok(consoleIsStale(out), 'a missing build is stale');
    await buildConsole({ outdir: out });
    const js = await readFile(join(out, 'app.js'), 'utf8');
    // Bundled: no import of anything at run time, so the page loads exactly one script.
    assert.not.match(js, /\bimport\s*[{(*"']|\brequire\(/);
    assert.not.match(js, /https?:\/\/(?!t\.me)[a-z]/i, 'an absolute URL in the bundle');
    assert.is(consoleIsStale(out), false);
    const old = new Date(Date.now() - 365 * 86_400_000);
    await utimes(join(out, 'app.js'), old, old);
    assert.ok(consoleIsStale(out), 'a build older than its sources is stale');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
