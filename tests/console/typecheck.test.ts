import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

// The project tsconfig excludes the browser code (it needs the DOM lib); this checks it under its own.
test('the console sources typecheck under src/console/tsconfig.json (DOM, strict)', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  let out = '';
  try {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'src/console/tsconfig.json'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? err);
  }
  assert.is(out, '');
});

test.run();
