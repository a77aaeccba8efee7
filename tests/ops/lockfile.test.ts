// `npm install` on a fresh clone leaves package-lock.json as committed: the lockfile is what npm
// writes for this package.json (a changed version, engines range or script-free field in
// package.json without `npm install` shows up here, not as a dirty tree on someone else's machine).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = new URL('../../', import.meta.url).pathname;

test('the lockfile root mirrors package.json (dependencies, devDependencies, engines)', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const top = lock.packages['']!;
  for (const field of ['dependencies', 'devDependencies', 'engines']) assert.equal(top[field], pkg[field], `${field}: run npm install and commit package-lock.json`);
});

test('npm install --package-lock-only changes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockfile-'));
  try {
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(root, f), join(dir, f));
    const r = spawnSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 0, r.stderr);
    const before = readFileSync(join(root, 'package-lock.json'), 'utf8');
    const after = readFileSync(join(dir, 'package-lock.json'), 'utf8');
    if (after !== before) {
      const line = after.split('\n').findIndex((l, i) => l !== before.split('\n')[i]);
      assert.unreachable(`npm rewrites package-lock.json at line ${line + 1}: ${after.split('\n')[line]?.trim()} (run npm install and commit it)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
