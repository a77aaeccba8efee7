// What the postinstall patches of node_modules/postgres share: the version check, the loop over the
// package's three builds (already patched → left alone; the known text → patched; anything else → the
// install fails, so an upgrade forces a look), --check, and the command line.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * `apply(file, text, path)` returns the file's patched text (the same text when already patched) and
 * throws when it finds neither the known original nor the patched text.
 */
export function patchPackage(pkgDir, { name, version, files, upgradeHint, apply }, { check = false } = {}) {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (pkg.version !== version) {
    throw new Error(`${name} patch: node_modules/postgres is ${pkg.version}, the patch is for ${version}; ${upgradeHint} and update or drop ops/patches/${name}.mjs`);
  }
  const changed = [];
  for (const file of files) {
    const path = join(pkgDir, file);
    const text = readFileSync(path, 'utf8');
    const next = apply(file, text, path);
    if (next === text) continue;
    if (check) throw new Error(`${name} patch: ${path} is not patched (run: node ops/patches/${name}.mjs)`);
    writeFileSync(path, next);
    changed.push(file);
  }
  return changed;
}

/** Runs `patch` on node_modules/postgres when the module at `moduleUrl` is the script node was given. */
export function runIfMain(moduleUrl, name, version, patch) {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const pkgDir = join(dirname(fileURLToPath(moduleUrl)), '../../node_modules/postgres');
  try {
    const changed = patch(pkgDir, { check: process.argv.includes('--check') });
    console.log(`${name} patch: ${changed.length ? `patched ${changed.join(', ')}` : 'already patched'} (postgres ${version})`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
