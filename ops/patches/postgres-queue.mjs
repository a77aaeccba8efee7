// postinstall: patches postgres.js 3.4.9's Queue (src/, cjs/src/, cf/src/queue.js) so a queue that never
// empties stops growing. Upstream shift() only compacts when the queue becomes empty, so the pool's
// open/busy queues (never empty while connections sit in them) keep one `undefined` slot per query ever
// run, and remove(), called by move() on every query, is indexOf over that whole history.
// Measured 2026-11-28 (node ops/patches/postgres-queue-bench.mjs original|patched, max 10 pool, local
// Postgres, 2 shared cores at load 3-5, process CPU µs per query in the 10,000 queries ending at):
//   sequential:     upstream 41 at 10k → 49-55 at 100k;            patched 38-39 → 24-32
//   64 in flight:   upstream 19-24 at 10k → 34-37 at 100k → 88-90 at 300k; patched 17-23 → 13-16 → 12-14
// The fix: shift() drops the consumed prefix once it is half the backing array (amortised O(1)),
// remove() searches from the head. length/push/shift/remove behave as before.
// Idempotent; fails the install when postgres is not 3.4.9 or a file is neither the known original nor
// the patched text, so an upgrade forces a look at whether upstream fixed it (3.4.9 is the newest today).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const version = '3.4.9';
export const files = ['src/queue.js', 'cjs/src/queue.js', 'cf/src/queue.js'];

const body = (remove, shiftTail) => `
function Queue(initial = []) {
  let xs = initial.slice()
  let index = 0

  return {
    get length() {
      return xs.length - index
    },
    remove: (x) => {
${remove}
    },
    push: (x) => (xs.push(x), x),
    shift: () => {
      const out = xs[index++]

      if (index === xs.length) {
        index = 0
        xs = []
${shiftTail}
      return out
    }
  }
}
`;

const originalBody = body(
  `      const index = xs.indexOf(x)
      return index === -1
        ? null
        : (xs.splice(index, 1), x)`,
  `      } else {
        xs[index - 1] = undefined
      }
`);

const patchedBody = body(
  `      // patched (ops/patches/postgres-queue.mjs): slots before index are consumed
      const i = xs.indexOf(x, index)
      return i === -1
        ? null
        : (xs.splice(i, 1), x)`,
  `      } else if (index * 2 >= xs.length) {
        // patched (ops/patches/postgres-queue.mjs): drop the consumed prefix once it is half the array
        xs.splice(0, index)
        index = 0
      } else {
        xs[index - 1] = undefined
      }
`);

const header = (file) => (file.startsWith('cjs/') ? 'module.exports = Queue\n' : 'export default Queue\n');
export const original = (file) => header(file) + originalBody;
export const patched = (file) => header(file) + patchedBody;

export function patch(pkgDir, { check = false } = {}) {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (pkg.version !== version) {
    throw new Error(`postgres-queue patch: node_modules/postgres is ${pkg.version}, the patch is for ${version}; ` +
      'check whether upstream fixed Queue (shift compaction, remove from index) and update or drop ops/patches/postgres-queue.mjs');
  }
  const changed = [];
  for (const file of files) {
    const path = join(pkgDir, file);
    const text = readFileSync(path, 'utf8');
    if (text === patched(file)) continue;
    if (text !== original(file)) throw new Error(`postgres-queue patch: ${path} is neither the known 3.4.9 original nor the patched text`);
    if (check) throw new Error(`postgres-queue patch: ${path} is not patched (run: node ops/patches/postgres-queue.mjs)`);
    writeFileSync(path, patched(file));
    changed.push(file);
  }
  return changed;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '../../node_modules/postgres');
  try {
    const changed = patch(pkgDir, { check: process.argv.includes('--check') });
    console.log(`postgres-queue patch: ${changed.length ? `patched ${changed.join(', ')}` : 'already patched'} (postgres ${version})`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
