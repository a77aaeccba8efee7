// The layering rules (.dependency-cruiser.cjs) fail on a deliberate violation of each, and the real
// tree has none. The fixtures (tests/ops/fixtures/layering) are laid out like the project.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);
const depcruise = join(root, 'node_modules/.bin/depcruise');

interface Violation { rule: { name: string }; from: string; to: string }

// The violations as JSON, and the exit code of the run `npm test` makes (the `err` reporter).
async function cruise(cwd: string, paths: string[]): Promise<{ violations: Violation[]; code: number }> {
  const args = [...paths, '--config', join(root, '.dependency-cruiser.cjs')];
  const json = await run(depcruise, [...args, '--output-type', 'json'], { cwd, maxBuffer: 64 * 1024 * 1024 });
  const code = await run(depcruise, [...args, '--output-type', 'err'], { cwd }).then(() => 0, (e: { code: number }) => e.code);
  return { violations: (JSON.parse(json.stdout) as { summary: { violations: Violation[] } }).summary.violations, code };
}

test('each rule fails on its deliberate violation, and only there', async () => {
  const { violations, code } = await cruise(join(root, 'tests/ops/fixtures/layering'), ['machines', 'src']);
  assert.is(code, 5, 'depcruise exits non-zero with the number of errors');
  const byRule = Object.fromEntries(violations.map((v) => [v.rule.name, v.from]));
  assert.equal(Object.keys(byRule).sort(), ['core-through-the-interface', 'machines-are-pure', 'no-cycles', 'platform-client-in-its-adapter', 'store-below-supervisor']);
  assert.is(byRule['machines-are-pure'], 'machines/io.machine.ts');
  assert.is(byRule['store-below-supervisor'], 'src/store/chats.ts');
  assert.is(byRule['core-through-the-interface'], 'src/api/chats.ts');
  assert.is(byRule['platform-client-in-its-adapter'], 'src/delivery/client.ts');
  assert.match(byRule['no-cycles']!, /^src\/delivery\/[ab]\.ts$/);
});

test('the project itself has no violation', async () => {
  const { violations, code } = await cruise(root, ['src', 'machines']);
  assert.equal(violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`), []);
  assert.is(code, 0);
});

test.run();
