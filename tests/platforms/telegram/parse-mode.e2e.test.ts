// parseMode for user accounts, end to end: the supervisor hands the message to the account driver,
// GramJS sends messages.sendMessage over real sockets, and the emulator records what reached the
// chat. MTProto has no parse mode, so markup must arrive as plain text plus entities — never as
// literal <b>…</b> or *…* — and bad markup must fail like the Bot API's "can't parse entities".
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { OutboundMessage } from '../../../src/delivery/types.ts';
import { AppError } from '../../../src/errors.ts';
import { newPhone, startStack, type Stack } from '../../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack(); });
test.after(async () => { await s.close(); });

const OWNER = 'parsemode';
let n = 0;

async function activeAccount(): Promise<{ id: string; userId: number }> {
  const phone = newPhone();
  const { userId } = await s.emu.createUser({ phone, firstName: 'Fmt' });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is((await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code)).status, 'active');
  return { id: c.id, userId };
}

// A fresh recipient per send: the emulator paces one chat at 1 msg/s, like Telegram.
async function recipient(): Promise<{ chat: string; userId: number }> {
  const username = `pm${process.pid}x${n++}`;
  const { userId } = await s.emu.createUser({ phone: newPhone(), firstName: 'Peer', username });
  return { chat: `@${username}`, userId };
}

const message = (connectionId: string, chat: string, text: string, extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
  id: randomUUID(), owner: OWNER, connectionId, chat, text, silent: false, priority: 'normal', attempts: 1, createdAt: new Date(), ...extra,
});

const lastTo = (chatId: number) => s.emu.delivered({ chatId }).at(-1);

test('html from a user account reaches the chat as plain text with entities (bold, italic, link, pre with language, spoiler); no parseMode, verbatim', async () => {
  const a = await activeAccount();
  const to = await recipient();
  const html = '<b>Release</b> <i>1.4</i> &amp; <a href="https://example.com/notes">notes</a>\n<pre><code class="language-ts">let x = 1 &lt; 2;</code></pre><tg-spoiler>soon</tg-spoiler>';
  assert.ok((await s.supervisor.send(message(a.id, to.chat, html, { parseMode: 'html' }))).platformMessageId);
  const got = lastTo(to.userId)!;
  assert.is(got.fromId, a.userId);
  assert.is(got.text, 'Release 1.4 & notes\nlet x = 1 < 2;soon');
  assert.equal(got.entities, [
    { type: 'bold', offset: 0, length: 7 },
    { type: 'italic', offset: 8, length: 3 },
    { type: 'text_link', offset: 14, length: 5, url: 'https://example.com/notes' },
    { type: 'pre', offset: 20, length: 14, language: 'ts' },
    { type: 'spoiler', offset: 34, length: 4 },
  ]);
  // Without parseMode the same account's text goes verbatim, markup and all, with no entities.
  const plain = await recipient();
  await s.supervisor.send(message(a.id, plain.chat, '<b>not bold</b> *nor this*. 1-2'));
  assert.is(lastTo(plain.userId)!.text, '<b>not bold</b> *nor this*. 1-2');
  assert.is(lastTo(plain.userId)!.entities, undefined);
});

test('MarkdownV2 from a user account: escapes, nesting and UTF-16 offsets past an emoji; the control API shows the entities', async () => {
  const a = await activeAccount();
  const to = await recipient();
  const markdown = '🚀 *Release _1\\.4_* is out\\! See [notes](https://example.com/a_\\(b\\)) `x*y`';
  await s.supervisor.send(message(a.id, to.chat, markdown, { parseMode: 'markdown' }));
  const got = lastTo(to.userId)!;
  assert.is(got.text, '🚀 Release 1.4 is out! See notes x*y');
  const entities = [
    { type: 'bold', offset: 3, length: 11 },
    { type: 'italic', offset: 11, length: 3 },
    { type: 'text_link', offset: 27, length: 5, url: 'https://example.com/a_(b)' },
    { type: 'code', offset: 33, length: 3 },
  ];
  assert.equal(got.entities, entities);
  assert.is(got.text.slice(3, 14), 'Release 1.4', 'the emoji counts two UTF-16 units');
  const listed = await (await fetch(`${s.emu.control}/messages?chatId=${to.userId}`)).json() as Array<{ text: string; entities?: unknown }>;
  assert.equal(listed.at(-1)!.entities, entities);
});

test('a tg://user link to a user the account knows becomes a real mention', async () => {
  const a = await activeAccount();
  const to = await recipient();
  await s.supervisor.send(message(a.id, to.chat, `Hi [Peer](tg://user?id=${to.userId})`, { parseMode: 'markdown' }));
  assert.equal(lastTo(to.userId)!.entities, [{ type: 'text_mention', offset: 3, length: 4, user_id: to.userId }]);
});

test("bad markup fails the message for good with the Bot API's reason; nothing is sent and the connection stays active", async () => {
  const a = await activeAccount();
  const to = await recipient();
  const bot = s.emu.createBot({ username: `pm${process.pid}x${n++}_bot` });
  const b = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token });
  const sent = s.emu.stats().delivered;
  const fromAccount = await s.supervisor.send(message(a.id, to.chat, 'Release 1.4 is out.', { parseMode: 'markdown' })).catch((e: unknown) => e);
  const fromBot = await s.supervisor.send(message(b.id, String(to.userId), 'Release 1.4 is out.', { parseMode: 'markdown' })).catch((e: unknown) => e);
  for (const e of [fromAccount, fromBot]) {
    assert.instance(e, AppError);
    assert.is((e as AppError).code, 'VALIDATION_ERROR');
    assert.is((e as AppError).retryable, false);
    assert.match((e as AppError).message, "can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'");
  }
  const html = await s.supervisor.send(message(a.id, to.chat, '<b>unclosed', { parseMode: 'html' })).catch((e: unknown) => e);
  assert.is((html as AppError).code, 'VALIDATION_ERROR');
  assert.match((html as AppError).message, 'can\'t parse entities: Can\'t find end tag corresponding to start tag "b"');
  assert.is(s.emu.stats().delivered, sent, 'nothing reached any chat');
  assert.is((await s.connections.get(OWNER, a.id)).status, 'active');
  // The same text escaped goes out from both, with the same visible text from the account.
  await s.supervisor.send(message(a.id, to.chat, 'Release 1\\.4 is out\\.', { parseMode: 'markdown' }));
  assert.is(lastTo(to.userId)!.text, 'Release 1.4 is out.');
  assert.ok((await s.supervisor.send(message(b.id, String(to.userId), 'Release 1\\.4 is out\\.', { parseMode: 'markdown' }))).platformMessageId);
});

test.run();
