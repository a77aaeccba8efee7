// postinstall: patches postgres.js 3.4.9's nextWrite (src/, cjs/src/, cf/src/connection.js) so a write
// queued by setImmediate that fires after the socket closed settles its queries with CONNECTION_CLOSED
// instead of throwing `Cannot read properties of null (reading 'write')` out of the timer, which no
// caller can catch and which ends the process. Upstream: porsager/postgres#1154, #1208 (open; the
// guard here is the one proposed in #1209). Seen here when Postgres restarted under load (the
// faults e2e test's daemon died), and deterministic with a reserved connection whose backend was
// terminated (tests/store/postgres-nextwrite.test.ts).
// Idempotent; fails the install when postgres is not 3.4.9 or a file holds neither the known original
// nor the patched function, so an upgrade forces a look at whether upstream fixed it.
import { patchPackage, runIfMain } from './runner.mjs';

export const version = '3.4.9';
export const files = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'];

export const original = `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)
`;

export const patched = `  function nextWrite(fn) {
    // patched (ops/patches/postgres-nextwrite.mjs): the socket closed before this queued write ran
    if (socket === null) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)
`;

export const patch = (pkgDir, opts) => patchPackage(pkgDir, {
  name: 'postgres-nextwrite', version, files,
  upgradeHint: 'check whether upstream guards nextWrite against a closed socket',
  apply(_file, text, path) {
    if (text.includes(patched)) return text;
    if (text.split(original).length !== 2) throw new Error(`postgres-nextwrite patch: ${path} does not hold the known 3.4.9 nextWrite exactly once`);
    return text.replace(original, patched);
  },
}, opts);

runIfMain(import.meta.url, 'postgres-nextwrite', version, patch);
