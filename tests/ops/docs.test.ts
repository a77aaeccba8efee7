// The operator docs stay in step with the code: every error code of src/errors.ts and every alert
// has its troubleshooting section, and every relative link and anchor in the ops docs resolves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { knownErrorCodes } from '../../src/errors.ts';
import '../../src/platforms/telegram/codes.ts'; // registers Telegram's codes, as the daemon does at start

const root = new URL('../../', import.meta.url).pathname;
const docs = ['README.md', 'docs/operations.md', 'docs/security.md', 'docs/troubleshooting.md', 'docs/api.md', 'docs/emulator.md', 'docs/adding-a-platform.md', 'clients/typescript/README.md'];
const read = (p: string) => readFileSync(join(root, p), 'utf8');

// GitHub's anchor rule for the headings we write: lower case, punctuation dropped, spaces to dashes.
const anchorsOf = (md: string) =>
  new Set([...md.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));

test('every error code has a troubleshooting section', () => {
  const headings = new Set([...read('docs/troubleshooting.md').matchAll(/^### (\S+)$/gm)].map((m) => m[1]));
  const missing = knownErrorCodes().filter((c) => !headings.has(c));
  assert.equal(missing, []);
});

test('every alert has a troubleshooting section', () => {
  const alerts = (parse(read('ops/prometheus/alerts.yml')) as { groups: Array<{ rules: Array<{ alert: string }> }> })
    .groups.flatMap((g) => g.rules.map((r) => r.alert));
  const anchors = anchorsOf(read('docs/troubleshooting.md'));
  assert.equal(alerts.filter((a) => !anchors.has(a.toLowerCase())), []);
});

test('relative links and anchors in the ops docs resolve', () => {
  const broken: string[] = [];
  for (const doc of docs) {
    const text = read(doc);
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // absolute URLs
      const [path, anchor] = target!.split('#');
      // README.md belongs to another part of the project and documents the configuration variables.
      if (path === '../README.md') continue;
      const file = path ? join(root, dirname(doc), path) : join(root, doc);
      if (!existsSync(file)) { broken.push(`${doc}: ${target} (no file)`); continue; }
      if (anchor && file.endsWith('.md') && !anchorsOf(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${doc}: ${target} (no anchor)`);
    }
  }
  assert.equal(broken, []);
});

test('the README and the docs point only at files a clone has (the design notes outside the repository are not shipped)', () => {
  const outside: string[] = [];
  for (const doc of [...docs, 'tests/emulator/README.md']) {
    const text = read(doc);
    for (const m of text.matchAll(/\.\.\/shared\/|\b(?:API|ARCHITECTURE|EMULATOR|LIBRARIES)\.md\b/g)) outside.push(`${doc}: ${m[0]}`);
  }
  assert.equal(outside, []);
  // The README leads with two commands: one runs the service (the demo, embedded defaults), one the tests.
  const firstBlock = /```sh\n([\s\S]*?)```/.exec(read('README.md'))![1]!.trim().split('\n');
  assert.is(firstBlock.length, 2);
  assert.match(firstBlock[0]!, /^npm install && npm run demo\b/);
  assert.match(firstBlock[1]!, /^bash \.ci\/run\b/);
  // The client and the CLI are on the first screen of usage (the first 60 lines).
  const firstScreen = read('README.md').split('\n').slice(0, 60).join('\n');
  assert.match(firstScreen, /npm run cli -- /);
  assert.match(firstScreen, /createClient\(/);
});

test('paths named in operations.md exist', () => {
  const named = [...read('docs/operations.md').matchAll(/`((?:ops|src|tests)\/[\w./-]+)`/g)].map((m) => m[1]!);
  assert.ok(named.length > 20);
  assert.equal(named.filter((p) => !existsSync(join(root, p))), []);
});

test.run();
