// The parse modes a user account applies itself (MTProto has no parse_mode): the same text and
// entities the Bot API makes of the same markup, from Telegram's documented examples
// (core.telegram.org/bots/api#formatting-options), with its escapes, nesting rules and errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api } from 'telegram';
import { AppError } from '../../../src/errors.ts';
import { formatText, parseHtml, parseMarkdownV2, toApiEntities, type FormattedText } from '../../../src/platforms/telegram/formatting.ts';

type Case = [markup: string, text: string, entities: FormattedText['entities']];

// Telegram's MarkdownV2 example, line by line, and what the Bot API answers for it.
const markdownDocs: Case[] = [
  ['*bold \\*text*', 'bold *text', [{ type: 'bold', offset: 0, length: 10 }]],
  ['_italic \\*text_', 'italic *text', [{ type: 'italic', offset: 0, length: 12 }]],
  ['__underline__', 'underline', [{ type: 'underline', offset: 0, length: 9 }]],
  ['~strikethrough~', 'strikethrough', [{ type: 'strikethrough', offset: 0, length: 13 }]],
  ['||spoiler||', 'spoiler', [{ type: 'spoiler', offset: 0, length: 7 }]],
  [
    '*bold _italic bold ~italic bold strikethrough ||italic bold strikethrough spoiler||~ __underline italic bold___ bold*',
    'bold italic bold italic bold strikethrough italic bold strikethrough spoiler underline italic bold bold',
    [
      { type: 'bold', offset: 0, length: 103 }, { type: 'italic', offset: 5, length: 93 },
      { type: 'strikethrough', offset: 17, length: 59 }, { type: 'spoiler', offset: 43, length: 33 },
      { type: 'underline', offset: 77, length: 21 },
    ],
  ],
  ['[inline URL](http://www.example.com/)', 'inline URL', [{ type: 'text_link', offset: 0, length: 10, url: 'http://www.example.com/' }]],
  ['[inline mention of a user](tg://user?id=123456789)', 'inline mention of a user', [{ type: 'text_mention', offset: 0, length: 24, userId: '123456789' }]],
  ['![👍](tg://emoji?id=5368324170671202286)', '👍', [{ type: 'custom_emoji', offset: 0, length: 2, customEmojiId: '5368324170671202286' }]],
  ['`inline fixed-width code`', 'inline fixed-width code', [{ type: 'code', offset: 0, length: 23 }]],
  ['```\npre-formatted fixed-width code block\n```', 'pre-formatted fixed-width code block\n', [{ type: 'pre', offset: 0, length: 37 }]],
  ['```python\nprint("hi")\n```', 'print("hi")\n', [{ type: 'pre', offset: 0, length: 12, language: 'python' }]],
  [
    '>Block quotation started\n>Block quotation continued\n>The last line\n**>The expandable block quotation\n>Hidden part\n>The last line of the expandable block quotation with the expandability mark||',
    'Block quotation started\nBlock quotation continued\nThe last line\nThe expandable block quotation\nHidden part\nThe last line of the expandable block quotation with the expandability mark',
    [{ type: 'blockquote', offset: 0, length: 64 }, { type: 'expandable_blockquote', offset: 64, length: 118 }],
  ],
];

for (const [markup, text, entities] of markdownDocs) {
  test(`MarkdownV2 ${JSON.stringify(markup.slice(0, 40))}`, () => {
    assert.equal(parseMarkdownV2(markup), { text, entities });
  });
}

test('MarkdownV2: every reserved character escaped is plain text; \\ escapes any ASCII character', () => {
  const reserved = '_*[]()~`>#+-=|{}.!';
  const escaped = [...reserved].map((c) => `\\${c}`).join('');
  assert.equal(parseMarkdownV2(`Release 1\\.4 is out\\! ${escaped} a\\\\b \\q`), { text: `Release 1.4 is out! ${reserved} a\\b q`, entities: [] });
});

test('MarkdownV2: inside code and pre only ` and \\ are special; a URL takes \\) and \\\\', () => {
  assert.equal(parseMarkdownV2('`a_b*c.d \\` \\\\`'), { text: 'a_b*c.d ` \\', entities: [{ type: 'code', offset: 0, length: 11 }] });
  assert.equal(parseMarkdownV2('```js\nif (a > b) { x = "1.2" }```'), { text: 'if (a > b) { x = "1.2" }', entities: [{ type: 'pre', offset: 0, length: 24, language: 'js' }] });
  assert.equal(parseMarkdownV2('[x](https://e.com/a_(b\\)?q=1.2)'), { text: 'x', entities: [{ type: 'text_link', offset: 0, length: 1, url: 'https://e.com/a_(b)?q=1.2' }] });
});

test('MarkdownV2: offsets count UTF-16 code units (an astral emoji is two)', () => {
  const parsed = parseMarkdownV2('😀 *b😀ld* _é_ 👍🏽');
  assert.is(parsed.text, '😀 b😀ld é 👍🏽');
  assert.equal(parsed.entities, [{ type: 'bold', offset: 3, length: 5 }, { type: 'italic', offset: 9, length: 1 }]);
  assert.is(parsed.text.slice(3, 8), 'b😀ld');
});

test('MarkdownV2: nesting, ___ as underline then italic, empty entities dropped, links to their own text', () => {
  assert.equal(parseMarkdownV2('_a __b___'), { text: 'a b', entities: [{ type: 'italic', offset: 0, length: 3 }, { type: 'underline', offset: 2, length: 1 }] });
  assert.equal(parseMarkdownV2('a**b'), { text: 'ab', entities: [] });
  assert.equal(parseMarkdownV2('[example\\.com]'), { text: 'example.com', entities: [{ type: 'text_link', offset: 0, length: 11, url: 'http://example.com/' }] });
  // An invalid URL keeps the text and drops the link, like Telegram.
  assert.equal(parseMarkdownV2('[x](javascript:alert\\(1\\))'), { text: 'x', entities: [] });
});

const parseError = (fn: () => unknown): AppError => {
  try {
    fn();
  } catch (err) {
    assert.instance(err, AppError);
    return err as AppError;
  }
  throw new Error('expected a parse error');
};

test("MarkdownV2 errors are permanent VALIDATION_ERRORs with Telegram's reasons and UTF-8 byte offsets", () => {
  const cases: Array<[string, string]> = [
    ['Release 1.4 is out.', "can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"],
    ['a - b', "can't parse entities: Character '-' is reserved and must be escaped with the preceding '\\'"],
    ['x > y', "can't parse entities: Character '>' is reserved and must be escaped with the preceding '\\'"],
    ['a | b', "can't parse entities: Character '|' is reserved and must be escaped with the preceding '\\'"],
    ['é *bold', "can't parse entities: Can't find end of Bold entity at byte offset 3"],
    // Entities nest, never cross: the second '_' opens a new italic inside bold, the second '*' a new bold.
    ['_a *b_ c*', "can't parse entities: Can't find end of Bold entity at byte offset 8"],
    ['```code', "can't parse entities: Can't find end of Pre entity at byte offset 0"],
    ['[a](http://x.com', "can't parse entities: Can't find end of a URL at byte offset 4"],
    ['![x](https://x.com)', "can't parse entities: Invalid tg://emoji or tg://time URL specified"],
    ['>quote *bold\nnext*', "can't parse entities: Can't find end of Bold entity at byte offset 7"],
  ];
  for (const [markup, message] of cases) {
    const err = parseError(() => parseMarkdownV2(markup));
    assert.is(err.code, 'VALIDATION_ERROR', markup);
    assert.is(err.retryable, false);
    assert.is(err.message, message, markup);
  }
});

// Telegram's HTML example: the same formatting as the MarkdownV2 one.
const htmlDocs: Case[] = [
  ['<b>bold</b>, <strong>bold</strong>', 'bold, bold', [{ type: 'bold', offset: 0, length: 4 }, { type: 'bold', offset: 6, length: 4 }]],
  ['<i>italic</i>, <em>italic</em>', 'italic, italic', [{ type: 'italic', offset: 0, length: 6 }, { type: 'italic', offset: 8, length: 6 }]],
  ['<u>u</u>, <ins>u</ins>', 'u, u', [{ type: 'underline', offset: 0, length: 1 }, { type: 'underline', offset: 3, length: 1 }]],
  ['<s>s</s>, <strike>s</strike>, <del>s</del>', 's, s, s', [0, 3, 6].map((offset) => ({ type: 'strikethrough' as const, offset, length: 1 }))],
  ['<span class="tg-spoiler">spoiler</span>, <tg-spoiler>spoiler</tg-spoiler>', 'spoiler, spoiler', [{ type: 'spoiler', offset: 0, length: 7 }, { type: 'spoiler', offset: 9, length: 7 }]],
  ['<a href="http://www.example.com/">inline URL</a>', 'inline URL', [{ type: 'text_link', offset: 0, length: 10, url: 'http://www.example.com/' }]],
  ['<a href="tg://user?id=123456789">inline mention of a user</a>', 'inline mention of a user', [{ type: 'text_mention', offset: 0, length: 24, userId: '123456789' }]],
  ['<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', '👍', [{ type: 'custom_emoji', offset: 0, length: 2, customEmojiId: '5368324170671202286' }]],
  ['<code>inline fixed-width code</code>', 'inline fixed-width code', [{ type: 'code', offset: 0, length: 23 }]],
  ['<pre>pre-formatted fixed-width code block</pre>', 'pre-formatted fixed-width code block', [{ type: 'pre', offset: 0, length: 36 }]],
  ['<pre><code class="language-python">print("hi")</code></pre>', 'print("hi")', [{ type: 'pre', offset: 0, length: 11, language: 'python' }]],
  ['<blockquote>Block quotation started\ncontinued</blockquote>', 'Block quotation started\ncontinued', [{ type: 'blockquote', offset: 0, length: 33 }]],
  ['<blockquote expandable>Hidden</blockquote>', 'Hidden', [{ type: 'expandable_blockquote', offset: 0, length: 6 }]],
];

for (const [markup, text, entities] of htmlDocs) {
  test(`HTML ${JSON.stringify(markup.slice(0, 40))}`, () => {
    assert.equal(parseHtml(markup), { text, entities });
  });
}

test('HTML and MarkdownV2 give the same result for the same formatting, nested', () => {
  const html = parseHtml('<b>bold <i>italic bold <s>italic bold strikethrough <span class="tg-spoiler">italic bold strikethrough spoiler</span></s> <u>underline italic bold</u></i> bold</b>');
  assert.equal(html, parseMarkdownV2(markdownDocs[5]![0]));
});

test('HTML: only &lt; &gt; &amp; &quot; and numeric references are decoded; tag names are case-insensitive; offsets in UTF-16', () => {
  assert.equal(parseHtml('1 &lt; 2 &amp;&amp; &quot;x&quot; &#128512; &#x41; &nbsp; a&b'), { text: '1 < 2 && "x" 😀 A &nbsp; a&b', entities: [] });
  assert.equal(parseHtml('😀<B>x</B><a href=\'https://e.com/?a=1&amp;b=2\'>l</a>'), {
    text: '😀xl', entities: [{ type: 'bold', offset: 2, length: 1 }, { type: 'text_link', offset: 3, length: 1, url: 'https://e.com/?a=1&b=2' }],
  });
  assert.equal(parseHtml('<b></b>empty'), { text: 'empty', entities: [] });
});

test("HTML errors: Telegram's reasons with UTF-8 byte offsets", () => {
  const cases: Array<[string, string]> = [
    ['a < b', 'Unsupported start tag "" at byte offset 2'],
    ['<p>x</p>', 'Unsupported start tag "p" at byte offset 0'],
    ['é<b>x', 'Can\'t find end tag corresponding to start tag "b"'],
    ['<b>x</i>', 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'],
    ['x</b>', 'Unexpected end tag at byte offset 1'],
    ['<span>x</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'],
    ['<b', 'Unclosed start tag at byte offset 0'],
    ['<a href="x', 'Unclosed start tag at byte offset 0'],
    ['<tg-emoji emoji-id="x">👍</tg-emoji>', 'Invalid custom emoji identifier specified'],
    ['&#xD83D;', 'Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units'],
  ];
  for (const [markup, reason] of cases) {
    const err = parseError(() => parseHtml(markup));
    assert.is(err.code, 'VALIDATION_ERROR', markup);
    assert.is(err.message, `can't parse entities: ${reason}`, markup);
  }
});

test('no parse mode: the text goes as it is, markup and reserved characters included', () => {
  assert.equal(formatText('<b>*x*</b>. 1-2'), { text: '<b>*x*</b>. 1-2', entities: [] });
  assert.equal(formatText('*x*', 'markdown').entities, [{ type: 'bold', offset: 0, length: 1 }]);
  assert.equal(formatText('<i>x</i>', 'html').entities, [{ type: 'italic', offset: 0, length: 1 }]);
});

test('MTProto entities: each type becomes its Api class, with url, language, emoji id and the expandable flag', () => {
  const api = toApiEntities([
    { type: 'bold', offset: 0, length: 1 }, { type: 'strikethrough', offset: 1, length: 1 },
    { type: 'pre', offset: 2, length: 1, language: 'ts' }, { type: 'pre', offset: 3, length: 1 },
    { type: 'text_link', offset: 4, length: 1, url: 'https://e.com/' }, { type: 'custom_emoji', offset: 5, length: 2, customEmojiId: '5368324170671202286' },
    { type: 'expandable_blockquote', offset: 7, length: 1 }, { type: 'text_mention', offset: 8, length: 1, userId: '42' },
  ]);
  assert.equal(api.map((e) => e.className), [
    'MessageEntityBold', 'MessageEntityStrike', 'MessageEntityPre', 'MessageEntityPre', 'MessageEntityTextUrl',
    'MessageEntityCustomEmoji', 'MessageEntityBlockquote', 'MessageEntityTextUrl',
  ]);
  assert.is((api[2] as Api.MessageEntityPre).language, 'ts');
  assert.is((api[3] as Api.MessageEntityPre).language, '');
  assert.is((api[5] as Api.MessageEntityCustomEmoji).documentId.toString(), '5368324170671202286');
  assert.is((api[6] as Api.MessageEntityBlockquote).collapsed, true);
  assert.is((api[7] as Api.MessageEntityTextUrl).url, 'tg://user?id=42', 'an unknown user stays a tg:// link');
  // Serialisable as part of a request (flags and longs right).
  assert.ok(new Api.messages.SendMessage({ peer: new Api.InputPeerSelf(), message: 'x'.repeat(9), randomId: 1n as never, entities: api }).getBytes().length > 0);
});

test.run();
