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
import { patchPackage, runIfMain } from './runner.mjs';

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

export const patch = (pkgDir, opts) => patchPackage(pkgDir, {
  name: 'postgres-queue', version, files,
  upgradeHint: 'check whether upstream fixed Queue (shift compaction, remove from index)',
  apply(file, text, path) {
    if (text === patched(file)) return text;
    if (text !== original(file)) throw new Error(`postgres-queue patch: ${path} is neither the known 3.4.9 original nor the patched text`);
    return patched(file);
  },
}, opts);

runIfMain(import.meta.url, 'postgres-queue', version, patch);
