// The client is a package of its own (clients/typescript/package.json): it builds to plain
// JavaScript that runs without tsx, its bin answers, and the versions it declares are the ones this
// repository installs and tests (the root package.json pins them for the tests).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = new URL('../../../', import.meta.url).pathname;
const pkgDir = join(root, 'clients/typescript');
const read = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string>; bin?: Record<string, string>; files?: string[] };

test('its dependencies are pinned to the versions the repository tests with', () => {
  const client = read(join(pkgDir, 'package.json'));
  const repo = read(join(root, 'package.json'));
  const tested = { ...repo.dependencies, ...repo.devDependencies };
  for (const [name, version] of Object.entries(client.dependencies ?? {})) {
    assert.is(tested[name], version, `${name}: client ${version}, repository ${tested[name]}`);
  }
  assert.equal(client.bin, { integration: './dist/src/cli/main.js' });
  assert.equal(client.files, ['dist/src', 'README.md']);
});

test('it builds to JavaScript whose bin and entry point run on plain node', () => {
  // Inside the package directory, so the built files resolve the repository's node_modules.
  const out = mkdtempSync(join(pkgDir, '.build-test-'));
  try {
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(pkgDir, 'tsconfig.build.json'), '--outDir', out], { encoding: 'utf8' });
    assert.is(tsc.status, 0, tsc.stdout + tsc.stderr);
    const help = spawnSync(process.execPath, [join(out, 'src/cli/main.js'), '--help'], { encoding: 'utf8' });
    assert.is(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: integration/);
    const entry = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(join(out, 'src/index.js'))}); console.log(Object.keys(m).sort().join(','))`], { encoding: 'utf8' });
    assert.is(entry.status, 0, entry.stderr);
    for (const name of ['createClient', 'EventStream', 'ApiError', 'loginWithPhone', 'loginWithQr', 'verifyWebhook', 'Webhook']) {
      assert.ok(entry.stdout.split(',').map((s) => s.trim()).includes(name), `${name} not exported: ${entry.stdout}`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
