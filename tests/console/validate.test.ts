import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkBotToken, checkChatRef, checkCode, checkMessageText, checkPhone } from '../../src/console/app/validate.ts';

const value = (c: { ok: boolean; value?: string }) => (c.ok ? c.value : null);

test('phone: E.164 after removing spaces, dashes, dots and brackets', () => {
  assert.is(value(checkPhone('+44 7700 900123')), '+447700900123');
  assert.is(value(checkPhone('+1 (415) 555-0100')), '+14155550100');
  assert.is(value(checkPhone('+683 4002')), '+6834002');
  for (const bad of ['', '447700900123', '+0447700900', '+44 77x0 900123', '+123456', '+1234567890123456']) {
    assert.is(checkPhone(bad).ok, false, bad);
  }
});

test('login code: 4 to 8 digits, spaces ignored', () => {
  assert.is(value(checkCode(' 12 345 ')), '12345');
  for (const bad of ['123', '123456789', '12a45', '']) assert.is(checkCode(bad).ok, false, bad);
});

test('bot token: the API pattern ^\\d+:[\\w-]+$', () => {
  assert.is(value(checkBotToken(' 123456:ABC-def_1 ')), '123456:ABC-def_1');
  for (const bad of ['ABC:123', '123456:', ':abc', '123456:abc def', '123456:abc/def']) assert.is(checkBotToken(bad).ok, false, bad);
});

test('chat: @username, numeric id, t.me links normalised to https', () => {
  assert.is(value(checkChatRef('@news_channel')), '@news_channel');
  assert.is(value(checkChatRef('-1001234567890')), '-1001234567890');
  assert.is(value(checkChatRef('t.me/news_channel')), 'https://t.me/news_channel');
  assert.is(value(checkChatRef('https://t.me/+AbC-dEf_123')), 'https://t.me/+AbC-dEf_123');
  assert.is(value(checkChatRef('http://telegram.me/joinchat/AbC')), 'https://t.me/joinchat/AbC');
  for (const bad of ['', '@abc', '@1abcdef', 'news', 'https://evil.example/t.me/x', 'https://t.me/a b', '<img src=x>']) {
    assert.is(checkChatRef(bad).ok, false, bad);
  }
});

test('message text: 1..4096 UTF-16 units, not only blanks', () => {
  assert.is(checkMessageText('hi').ok, true);
  assert.is(checkMessageText('x'.repeat(4096)).ok, true);
  assert.is(checkMessageText('x'.repeat(4097)).ok, false);
  assert.is(checkMessageText('  \n ').ok, false);
});

test.run();
