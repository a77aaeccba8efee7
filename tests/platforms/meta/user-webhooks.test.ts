// The Instagram and Threads webhook parsers on the payloads their references show: what becomes a
// message.received (comments, messages, replies, mentions), what is acknowledged and dropped (echoes
// of the account's own messages, reads, Instagram mentions without text, Threads publish/delete), and
// bodies that are not the platform's shape (VALIDATION_ERROR, a 400 at the route).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import { metaTime, parseInstagramWebhook, parseThreadsWebhook } from '../../../src/platforms/meta/user-webhooks.ts';

const raw = (v: unknown) => Buffer.from(JSON.stringify(v));

test('Instagram: a comment, a message; an echo, a read and a mention are not messages', () => {
  const b = parseInstagramWebhook(raw({
    object: 'instagram',
    entry: [
      { id: '1784', time: 1723226877, changes: [
        { field: 'comments', value: { from: { id: '232', username: 'fan' }, media: { id: '1790', media_product_type: 'FEED' }, id: '1801', text: 'Nice' } },
        { field: 'mentions', value: { media_id: '1790', comment_id: '1802' } },
      ] },
      { id: '1784', time: 1723226877123, messaging: [
        { sender: { id: '555' }, recipient: { id: '1784' }, timestamp: 1723226877123, message: { mid: 'aWdf1', text: 'Hi' } },
        { sender: { id: '1784' }, recipient: { id: '555' }, timestamp: 1723226877200, message: { mid: 'aWdf2', text: 'our reply', is_echo: true } },
        { sender: { id: '555' }, recipient: { id: '1784' }, timestamp: 1723226877300, read: { mid: 'aWdf2' } },
      ] },
    ],
  }));
  assert.equal(b.received, [
    { accountId: '1784', message: { chat: '1790', from: 'fan', text: 'Nice', platformMessageId: '1801', date: '2024-08-09T18:07:57.000Z' } },
    { accountId: '1784', message: { chat: '555', from: '555', text: 'Hi', platformMessageId: 'aWdf1', date: '2024-08-09T18:07:57.123Z' } },
  ]);
  assert.equal(b.statuses, []);
});

test('Threads: a reply (chat = the root post), a mention (chat = the post that mentions); publish is dropped', () => {
  const reply = parseThreadsWebhook(raw({
    app_id: '123456', topic: 'moderate', target_id: '78901', time: 1723226877, subscription_id: '234567', has_uid_field: false,
    values: { value: { id: '8901234', username: 'test_username', text: 'Reply', media_type: 'TEXT_POST', replied_to: { id: '567890' }, root_post: { id: '123456', owner_id: '78901', username: 'me' }, shortcode: 'Pp', timestamp: '2024-08-07T10:33:16+0000' }, field: 'replies' },
  }));
  assert.equal(reply.received, [{ accountId: '78901', message: { chat: '123456', from: 'test_username', text: 'Reply', platformMessageId: '8901234', date: '2024-08-07T10:33:16.000Z' } }]);
  const mention = parseThreadsWebhook(raw({ target_id: '78901', time: 1, values: { field: 'mentions', value: { id: '99', username: 'x', text: 'hey @me' } } }));
  assert.equal(mention.received.map((r) => [r.accountId, r.message.chat, r.message.from]), [['78901', '99', 'x']]);
  assert.equal(parseThreadsWebhook(raw({ target_id: '78901', values: { field: 'publish', value: { id: '1' } } })).received, []);
});

test('not the platform\'s shape: VALIDATION_ERROR', () => {
  const refused = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return isAppError(err) && err.code === 'VALIDATION_ERROR';
    }
    return false;
  };
  assert.ok(refused(() => parseInstagramWebhook(Buffer.from('{'))));
  assert.ok(refused(() => parseInstagramWebhook(raw({ object: 'page', entry: [] }))));
  assert.ok(refused(() => parseInstagramWebhook(raw({ object: 'instagram', entry: [{ changes: [] }] }))));
  assert.ok(refused(() => parseInstagramWebhook(raw({ object: 'instagram', entry: [{ id: '1', changes: [{ field: 'comments', value: { text: 'no ids' } }] }] }))));
  assert.ok(refused(() => parseThreadsWebhook(raw([]))));
  assert.ok(refused(() => parseThreadsWebhook(raw({ values: { field: 'replies', value: { text: 'no ids' } } }))));
});

test('metaTime: seconds, milliseconds and +0000 offsets', () => {
  assert.is(metaTime(1723226877), '2024-08-09T18:07:57.000Z');
  assert.is(metaTime(1723226877123), '2024-08-09T18:07:57.123Z');
  assert.is(metaTime('2024-08-07T10:33:16+0000'), '2024-08-07T10:33:16.000Z');
});

test.run();
