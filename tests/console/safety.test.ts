import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

// The console is safe by construction only while no code path turns strings into markup or code.
// This reads every source file so that such a call cannot slip in unnoticed.
const appDir = fileURLToPath(new URL('../../src/console/app', import.meta.url));
const walk = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
const sources = walk(appDir).filter((f) => f.endsWith('.ts')).map((f) => ({ f, text: readFileSync(f, 'utf8') }));

test('no HTML or code from strings anywhere in the console', () => {
  assert.ok(sources.length > 10);
  const forbidden = /\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(|createContextualFragment|DOMParser|setAttribute\(\s*['"]on|setAttribute\(\s*['"]style/;
  const hits = sources.filter((s) => forbidden.test(s.text)).map((s) => s.f);
  assert.equal(hits, []);
});

test('no cookies, no localStorage (the token lives in sessionStorage), no third-party URLs', () => {
  const hits = sources.filter((s) => /document\.cookie|localStorage|https?:\/\/(?!t\.me)[a-z]/i.test(s.text.replace(/\/\/.*$/gm, ''))).map((s) => s.f);
  // The one exception: the chosen language (en/ru, never a secret) is remembered in localStorage.
  const i18n = join(appDir, 'i18n', 'index.ts');
  assert.equal(hits.filter((f) => f !== i18n), []);
  const text = sources.find((s) => s.f === i18n)!.text;
  assert.equal([...text.matchAll(/localStorage\??\.(\w+)\(([^,)]*)/g)].map((m) => m[2]), ['storageKey', 'storageKey']);
});

test.run();
