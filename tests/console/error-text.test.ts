// Every error code the service can answer with reads as a human sentence in both languages. The codes
// come from src/errors.ts itself (its registry, and its source text so that a code added there is
// caught even before anything registers it) plus the platforms' registered codes.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as errors from '../../src/errors.ts';
import '../../src/platforms/telegram/codes.ts'; // registers Telegram's codes, as the daemon does at start
import { describeError } from '../../src/console/app/error-text.ts';
import { catalogues, langs, setLang } from '../../src/console/app/i18n/index.ts';

const source = readFileSync(new URL('../../src/errors.ts', import.meta.url), 'utf8');
const coreBlock = source.slice(source.indexOf('const coreCodes = {'), source.indexOf('} satisfies Record<string, ErrorCodeSpec>'));
const fromSource = [...coreBlock.matchAll(/^\s{2}([A-Z][A-Z0-9_]+): spec\(/gm)].map((m) => m[1]!);
const allCodes = [...new Set([...fromSource, ...errors.knownErrorCodes()])].sort();

test('the codes are really read from src/errors.ts', () => {
  assert.ok(fromSource.length >= 20, `only ${fromSource.length} codes parsed`);
  for (const c of ['VALIDATION_ERROR', 'RATE_LIMITED', 'CONSENT_REQUIRED', 'TG_NOT_ADMIN']) assert.ok(allCodes.includes(c), c);
});

for (const lang of langs) {
  test(`every error code has an error.CODE sentence in the ${lang} catalogue`, () => {
    const cat = catalogues[lang] as Record<string, string>;
    const missing = allCodes.filter((c) => typeof cat[`error.${c}`] !== 'string' || cat[`error.${c}`]!.trim() === '');
    assert.equal(missing, [], `missing in ${lang}: ${missing.join(', ')}`);
  });
}

test('both catalogues have the same keys, no empty strings, and the same {placeholders}', () => {
  const keys = (l: string) => Object.keys(catalogues[l as 'en']).sort();
  assert.equal(keys('ru'), keys('en'));
  const holes = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!.toLowerCase()).sort();
  for (const k of keys('en')) {
    const en = (catalogues.en as Record<string, string>)[k]!;
    const ru = (catalogues.ru as Record<string, string>)[k]!;
    assert.ok(en.trim() && ru.trim(), k);
    assert.equal(holes(ru), holes(en), `placeholders of ${k}`);
  }
});

test('flood wait reads as code — sentence with the seconds, from retryAfter or retryAt', () => {
  setLang('en', false);
  assert.is(describeError({ code: 'TG_API_429', message: 'FLOOD_WAIT_17', retryAfter: 17 }), 'TG_API_429 — Telegram asks to wait 17 s');
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.is(describeError({ code: 'TG_API_429', message: 'x', retryAt: '2026-01-01T00:00:09.200Z' }, now), 'TG_API_429 — Telegram asks to wait 10 s');
  assert.is(describeError({ code: 'RATE_LIMITED', message: 'x' }), 'RATE_LIMITED — Too many requests; try again shortly');
});

test('a bot is "the bot", an account "the account", in both languages', () => {
  setLang('en', false);
  assert.is(describeError({ code: 'TG_NOT_ADMIN', message: 'x' }, 0, 'bot'), 'TG_NOT_ADMIN — The bot is not an admin of this chat');
  assert.is(describeError({ code: 'TG_NOT_ADMIN', message: 'x' }, 0, 'account'), 'TG_NOT_ADMIN — The account is not an admin of this chat');
  setLang('ru', false);
  assert.is(describeError({ code: 'TG_NOT_ADMIN', message: 'x' }, 0, 'bot'), 'TG_NOT_ADMIN — Бот не администратор этого чата');
  assert.is(describeError({ code: 'RATE_LIMITED', message: 'x', retryAfter: 5 }), 'RATE_LIMITED — Слишком много запросов; попробуйте через 5 с');
  setLang('en', false);
});

test('codes the catalogue does not know keep the server message', () => {
  setLang('en', false);
  assert.is(describeError({ code: 'NEW_CODE', message: 'Something new' }), 'NEW_CODE — Something new');
});

test.run();
