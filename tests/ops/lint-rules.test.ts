// The project's own lint rule: a Telegram error code (TG_…) as a string outside the Telegram adapter,
// the console's sentences and the tests fails `npm run lint` (eslint.config.js). Checked on text
// placed at the paths the rule looks at, with the real configuration.
import { ESLint } from 'eslint';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const eslint = new ESLint({ cwd: new URL('../../', import.meta.url).pathname });
const code = "export const wait = (e: { code: string }) => e.code === 'TG_API_429';\nexport const doc = `answers ${'x'} TG_UNAVAILABLE`;\n";

const problems = async (filePath: string) =>
  (await eslint.lintText(code, { filePath }))[0]!.messages.filter((m) => m.ruleId === 'no-restricted-syntax').map((m) => m.line);

test('a TG_ code in the core fails the lint, in a literal and in a template', async () => {
  for (const path of ['src/supervisor/x.ts', 'src/delivery/x.ts', 'src/api/x.ts', 'machines/x.machine.ts']) {
    assert.equal(await problems(path), [1, 2], path);
  }
});

test('where the codes belong, the same text passes', async () => {
  for (const path of ['src/platforms/telegram/x.ts', 'src/console/app/x.ts', 'tests/x.test.ts']) assert.equal(await problems(path), [], path);
});

test.run();
