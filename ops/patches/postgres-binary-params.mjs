// postinstall: postgres.js 3.4.9 sends a bytea parameter (a Buffer or Uint8Array whose type is bytea, OID 17)
// in Postgres's binary format: the Bind message carries one format code per parameter, 1 for those, and
// their bytes as they are (postgresql.org/docs/current/protocol-message-formats.html, Bind: parameter
// format codes). postgres.js always sends text, and bytea in text is `\x` and two hex digits a byte: each
// 1 MiB file chunk of an upload (src/media/files.ts) became a 1 MiB copy, a 2 MiB hex string and its 2 MiB
// encoding in a message buffer grown step by step (bench:send --media 1mb: 8.3 MB RSS per concurrent
// 1 MB upload). Binary, the chunk is copied once into the message. Every other parameter stays text.
// tests/store/postgres-binary-params.test.ts checks the installed copies and the bytes, embedded mode too.
// Idempotent; fails the install when postgres is not 3.4.9 or a file holds neither the known original
// nor the patched text, so an upgrade forces a look (upstream sends every parameter as text as of 3.4.9).
import { patchPackage, runIfMain } from './runner.mjs';

export const version = '3.4.9';
export const files = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js', 'src/bytes.js', 'cjs/src/bytes.js', 'cf/src/bytes.js'];

const binary = '(types[i] === 17 && x instanceof Uint8Array)';

/** [original, patched] pairs per file kind, each found exactly once per file. */
export const edits = {
  'connection.js': [
    [
      '    b().B().str(portal + b.N).str(statement + b.N).i16(0).i16(parameters.length)\n',
      '    b().B().str(portal + b.N).str(statement + b.N) // patched (ops/patches/postgres-binary-params.mjs): bytea parameters in binary\n' +
      `    parameters.some((x, i) => ${binary})\n` +
      `      ? (b.i16(parameters.length), parameters.forEach((x, i) => b.i16(${binary} ? 1 : 0)))\n` +
      '      : b.i16(0)\n' +
      '    b.i16(parameters.length)\n',
    ],
    [
      '      type = types[i]\n      parameters[i] = x = type in options.serializers\n',
      '      type = types[i]\n' +
      `      if (${binary}) // patched (ops/patches/postgres-binary-params.mjs): the bytes as they are\n` +
      '        return b.i32(x.length).bytes(x)\n\n' +
      '      parameters[i] = x = type in options.serializers\n',
    ],
  ],
  'bytes.js': [
    [
      '  raw(x) {\n',
      '  bytes(x) { // patched (ops/patches/postgres-binary-params.mjs): copies x into the message once\n' +
      '    fit(x.length)\n' +
      '    buffer.set(x, b.i)\n' +
      '    b.i += x.length\n' +
      '    return b\n' +
      '  },\n' +
      '  raw(x) {\n',
    ],
  ],
};

export const patch = (pkgDir, opts) => patchPackage(pkgDir, {
  name: 'postgres-binary-params', version, files,
  upgradeHint: 'check whether upstream sends bytea parameters in binary',
  apply(file, text, path) {
    const todo = edits[file.endsWith('bytes.js') ? 'bytes.js' : 'connection.js'].filter(([, after]) => !text.includes(after));
    for (const [before] of todo) {
      if (text.split(before).length !== 2) throw new Error(`postgres-binary-params patch: ${path} does not hold the known 3.4.9 text exactly once: ${before.trim()}`);
    }
    return todo.reduce((t, [before, after]) => t.replace(before, after), text);
  },
}, opts);

runIfMain(import.meta.url, 'postgres-binary-params', version, patch);
