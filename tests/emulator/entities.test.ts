import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, helpers } from 'telegram';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock, connected, destroyAll, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// messages.sendMessage's `entities` (the formatting an MTProto client sends; it has no parse mode)
// stay on the delivered message, Bot API style, so a test can check what reached the chat.

let emu: Emulator;
const clock = new ManualClock();
let n = 0;
const phone = () => `+4477007${String(10_000 + ++n).slice(1)}`;

test.before(async () => { emu = await startEmulator({ clock }); });
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

async function pair() {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p });
  const to = await emu.createUser({ phone: phone(), username: `ent_${n}` });
  const { client } = await connected(emu, await emu.createSession(p));
  const r = (await withTimeout(client.invoke(new Api.contacts.ResolveUsername({ username: `ent_${n}` })))) as Api.contacts.ResolvedPeer;
  const u = r.users[0] as Api.User;
  const peer = new Api.InputPeerUser({ userId: u.id, accessHash: u.accessHash! });
  const send = (message: string, entities: Api.TypeMessageEntity[]) =>
    withTimeout(client.invoke(new Api.messages.SendMessage({ peer, message, entities, randomId: helpers.generateRandomLong() })));
  return { userId, toId: to.userId, peer: u, send };
}

test('entities reach delivered() and GET /messages with Bot API names, urls, languages, emoji ids and mentions; none, no field', async () => {
  const { userId, toId, peer, send } = await pair();
  await send('😀 bold link code quote @x', [
    new Api.MessageEntityBold({ offset: 3, length: 4 }),
    new Api.MessageEntityTextUrl({ offset: 8, length: 4, url: 'https://example.com/' }),
    new Api.MessageEntityPre({ offset: 13, length: 4, language: 'ts' }),
    new Api.MessageEntityBlockquote({ offset: 18, length: 5, collapsed: true }),
    new Api.MessageEntityCustomEmoji({ offset: 0, length: 2, documentId: helpers.returnBigInt('5368324170671202286') }),
    new Api.InputMessageEntityMentionName({ offset: 24, length: 2, userId: new Api.InputUser({ userId: peer.id, accessHash: peer.accessHash! }) }),
    new Api.MessageEntityStrike({ offset: 3, length: 1 }),
  ]);
  const expected = [
    { type: 'bold', offset: 3, length: 4 },
    { type: 'text_link', offset: 8, length: 4, url: 'https://example.com/' },
    { type: 'pre', offset: 13, length: 4, language: 'ts' },
    { type: 'expandable_blockquote', offset: 18, length: 5 },
    { type: 'custom_emoji', offset: 0, length: 2, custom_emoji_id: '5368324170671202286' },
    { type: 'text_mention', offset: 24, length: 2, user_id: toId },
    { type: 'strikethrough', offset: 3, length: 1 },
  ];
  assert.equal(emu.delivered({ fromId: userId })[0]!.entities, expected);
  const viaHttp = (await (await fetch(`${emu.control}/messages?fromId=${userId}`)).json()) as Array<{ entities: unknown }>;
  assert.equal(viaHttp[0]!.entities, expected);
  // A message without entities keeps the record as it was: no entities field for older consumers.
  clock.advance(1100); // Telegram's 1 msg/s into one chat
  await send('plain', []);
  assert.equal(Object.keys(emu.delivered({ fromId: userId })[1]!).sort(), ['chatId', 'date', 'fromId', 'id', 'randomId', 'text']);
});

test('an entity past the end of the text (in UTF-16 units) is ENTITY_BOUNDS_INVALID and nothing is delivered', async () => {
  const { userId, send } = await pair();
  const err = await rpcErrorOf(send('😀x', [new Api.MessageEntityBold({ offset: 2, length: 2 })]));
  assert.is(err, 'ENTITY_BOUNDS_INVALID');
  assert.is(emu.delivered({ fromId: userId }).length, 0);
  await send('😀x', [new Api.MessageEntityBold({ offset: 2, length: 1 })]);
  assert.is(emu.delivered({ fromId: userId })[0]!.text, '😀x');
});

test.run();
