// postinstall: lets one postgres.js 3.4.9 query ask for its results in Postgres's binary format, with
// `sql.unsafe(text, args, { prepare: true, binaryResults: true }).raw()`: the Bind message then says
// "every column binary" instead of "every column text" (postgresql.org/docs/current/protocol-message-formats.html,
// Bind: result-column format codes). postgres.js always asks for text, and a bytea in text is `\x` and two
// hex digits a byte: a 512 KiB file piece arrived as 1 MiB of text, joined from the socket's chunks
// into one 1 MiB buffer, then decoded into a third buffer (3 copies of the piece). In binary the
// piece arrives as itself and `.raw()` hands out a view of the received message (1 copy).
// Only raw queries may set it: postgres.js's parsers read text. src/store/uploads.ts (readChunkSlice) is
// the one user; tests/store/postgres-binary-results.test.ts checks the installed copies and the bytes.
// Idempotent; fails the install when postgres is not 3.4.9 or a file holds neither the known original
// nor the patched text, so an upgrade forces a look (upstream has no result-format option as of 3.4.9).
import { patchPackage, runIfMain } from './runner.mjs';

export const version = '3.4.9';
export const files = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'];

/** [original, patched] pairs, each found exactly once per file. */
export const edits = [
  [
    '      Bind(q.parameters, q.statement.types, q.statement.name, q.cursorName),\n',
    '      Bind(q.parameters, q.statement.types, q.statement.name, q.cursorName, q.options.binaryResults === true), // patched (ops/patches/postgres-binary-results.mjs)\n',
  ],
  [
    "  function Bind(parameters, types, statement = '', portal = '') {\n",
    "  function Bind(parameters, types, statement = '', portal = '', binaryResults = false) {\n",
  ],
  [
    '    b.i16(0)\n\n    return b.end()\n',
    '    binaryResults ? b.i16(1).i16(1) : b.i16(0) // patched (ops/patches/postgres-binary-results.mjs): one format code, binary, for every column\n\n    return b.end()\n',
  ],
];

export const patch = (pkgDir, opts) => patchPackage(pkgDir, {
  name: 'postgres-binary-results', version, files,
  upgradeHint: 'check whether upstream can ask for binary results',
  apply(_file, text, path) {
    const todo = edits.filter(([, after]) => !text.includes(after));
    for (const [before] of todo) {
      if (text.split(before).length !== 2) throw new Error(`postgres-binary-results patch: ${path} does not hold the known 3.4.9 text exactly once: ${before.trim()}`);
    }
    return todo.reduce((t, [before, after]) => t.replace(before, after), text);
  },
}, opts);

runIfMain(import.meta.url, 'postgres-binary-results', version, patch);
