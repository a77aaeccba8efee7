import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, helpers } from 'telegram';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock, connected, destroyAll, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// Files, edits and deletes as the emulator serves them: MTProto upload.saveFilePart /
// saveBigFilePart + messages.sendMedia (random_id dedupe), messages.editMessage,
// messages.deleteMessages, channels.deleteMessages; the Bot API's sendPhoto/sendDocument/… by
// multipart or by URL, editMessageText/editMessageCaption, deleteMessage — with Telegram's rules.
// Domain time stands still (ManualClock) and moves only where a test moves it (pacing, the 48 h rules).

let emu: Emulator;
let files: Server;
let filesBase = '';
const served = new Map<string, Buffer>();
let n = 0;
const MB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const later = () => emu.clock.advance(2); // past the 1 msg/s per chat window

test.before(async () => {
  emu = await startEmulator({ clock: new ManualClock() });
  files = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  filesBase = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
  files.close();
});

async function account(username?: string) {
  const phone = `+4477009${String(10_000 + ++n).slice(1)}`;
  const { userId } = await emu.createUser({ phone, firstName: `M${n}`, ...(username ? { username: `${username}${n}` } : {}) });
  const tc = await connected(emu, await emu.createSession(phone));
  return { ...tc, userId, username: username ? `${username}${n}` : '' };
}

type Account = Awaited<ReturnType<typeof account>>;

async function userPeer(a: Account, username: string): Promise<Api.InputPeerUser> {
  const r = (await withTimeout(a.client.invoke(new Api.contacts.ResolveUsername({ username })))) as Api.contacts.ResolvedPeer;
  const u = r.users[0] as Api.User;
  return new Api.InputPeerUser({ userId: u.id, accessHash: u.accessHash! });
}

async function channelPeer(a: Account, username: string): Promise<Api.InputPeerChannel> {
  const r = (await withTimeout(a.client.invoke(new Api.contacts.ResolveUsername({ username })))) as Api.contacts.ResolvedPeer;
  const c = r.chats[0] as Api.Channel;
  return new Api.InputPeerChannel({ channelId: c.id, accessHash: c.accessHash! });
}

/** Uploads `file` in 512 KiB parts (saveBigFilePart above 10 MB, as Telegram asks) and returns the InputFile. */
async function upload(a: Account, file: Buffer, name: string, o: { skip?: number; forceSmall?: boolean } = {}): Promise<Api.TypeInputFile> {
  const part = 512 * 1024;
  const parts = Math.ceil(file.length / part);
  const big = file.length > 10 * MB && !o.forceSmall;
  const fileId = helpers.generateRandomLong();
  for (let i = 0; i < parts; i++) {
    if (i === o.skip) continue;
    const bytes = file.subarray(i * part, (i + 1) * part);
    const req = big ? new Api.upload.SaveBigFilePart({ fileId, filePart: i, fileTotalParts: parts, bytes }) : new Api.upload.SaveFilePart({ fileId, filePart: i, bytes });
    assert.is(await withTimeout(a.client.invoke(req)), true);
  }
  return big ? new Api.InputFileBig({ id: fileId, parts, name }) : new Api.InputFile({ id: fileId, parts, name, md5Checksum: '' });
}

const documentMedia = (file: Api.TypeInputFile, name: string) => new Api.InputMediaUploadedDocument({
  file, mimeType: 'application/pdf', attributes: [new Api.DocumentAttributeFilename({ fileName: name })], forceFile: true,
});

test('MTProto: a 3 MB document in parts + sendMedia; the same random_id again is delivered once', async () => {
  const a = await account();
  const b = await account('mreader');
  const peer = await userPeer(a, b.username);
  const file = randomBytes(3 * MB + 5);
  const media = documentMedia(await upload(a, file, 'report.pdf'), 'report.pdf');
  const randomId = helpers.generateRandomLong();
  const send = () => withTimeout(a.client.invoke(new Api.messages.SendMedia({ peer, media, message: 'the report', randomId })));
  const first = await send();
  const second = await send(); // Telegram's dedupe: no parts needed any more
  assert.is((second as Api.UpdateShortSentMessage).id, (first as Api.UpdateShortSentMessage).id);
  const got = emu.delivered({ chatId: b.userId, fromId: a.userId });
  assert.is(got.length, 1);
  assert.equal(got[0]!.media, { type: 'document', size: file.length, sha256: sha(file), filename: 'report.pdf', mimeType: 'application/pdf' });
  assert.is(got[0]!.text, 'the report');
  const viaHttp = (await (await fetch(`${emu.control}/messages?chatId=${b.userId}`)).json()) as Array<{ media: { sha256: string } }>;
  assert.is(viaHttp[0]!.media.sha256, sha(file));
});

test('MTProto: the rules of parts — a part missing, >10 MB through saveFilePart, a photo over 10 MB', async () => {
  const a = await account();
  const b = await account('mrules');
  const peer = await userPeer(a, b.username);
  const send = (media: Api.TypeInputMedia) => a.client.invoke(new Api.messages.SendMedia({ peer, media, message: '', randomId: helpers.generateRandomLong() }));
  const small = randomBytes(MB + 100);
  assert.is(await rpcErrorOf(send(documentMedia(await upload(a, small, 'x.bin', { skip: 1 }), 'x.bin'))), 'FILE_PART_1_MISSING');
  assert.is(await rpcErrorOf(upload(a, randomBytes(11 * MB), 'big.bin', { forceSmall: true })), 'FILE_PART_SIZE_INVALID');
  const bigPhoto = randomBytes(11 * MB);
  assert.is(await rpcErrorOf(send(new Api.InputMediaUploadedPhoto({ file: await upload(a, bigPhoto, 'p.jpg') }))), 'PHOTO_SAVE_FILE_INVALID');
  // The same 11 MB as a document through saveBigFilePart is fine.
  later();
  await withTimeout(send(documentMedia(await upload(a, bigPhoto, 'p.bin'), 'p.bin')));
  const got = emu.delivered({ fromId: a.userId });
  assert.equal(got.map((m) => [m.media?.type, m.media?.size, m.media?.sha256]), [['document', bigPhoto.length, sha(bigPhoto)]]);
  assert.is(await rpcErrorOf(a.client.invoke(new Api.upload.SaveFilePart({ fileId: helpers.generateRandomLong(), filePart: 0, bytes: Buffer.alloc(600 * 1024) }))), 'FILE_PART_TOO_BIG');
});

test('MTProto: editMessage — own messages only, MESSAGE_NOT_MODIFIED, 48 h in private chats, none in channels', async () => {
  const a = await account('meditor');
  const b = await account('mother');
  const peer = await userPeer(a, b.username);
  const sent = (await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer, message: 'v1', randomId: helpers.generateRandomLong() })))) as Api.UpdateShortSentMessage;
  const edit = (text: string, who = a, where: Api.TypeInputPeer = peer, id = sent.id) => who.client.invoke(new Api.messages.EditMessage({ peer: where, id, message: text }));
  const answer = await withTimeout(edit('v2'));
  assert.instance(answer, Api.Updates);
  assert.instance((answer as Api.Updates).updates[0], Api.UpdateEditMessage);
  assert.is(await rpcErrorOf(edit('v2')), 'MESSAGE_NOT_MODIFIED');
  assert.is(await rpcErrorOf(edit('v3', b, await userPeer(b, a.username))), 'MESSAGE_AUTHOR_REQUIRED');
  assert.is(await rpcErrorOf(edit('v3', a, peer, 999_999)), 'MESSAGE_ID_INVALID');
  const [m] = emu.delivered({ fromId: a.userId });
  assert.equal([m!.text, m!.edits], ['v2', 1]);
  assert.ok(m!.editedAt! >= m!.date);
  emu.clock.advance(48 * 3600 + 1);
  assert.is(await rpcErrorOf(edit('v3')), 'MESSAGE_EDIT_TIME_EXPIRED');
  // A channel post stays editable.
  const username = `mchan${n}`;
  emu.createChat({ type: 'channel', title: 'C', username, members: [{ id: a.userId, role: 'creator' }] });
  const channel = await channelPeer(a, username);
  await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer: channel, message: 'post', randomId: helpers.generateRandomLong() })));
  const post = emu.delivered({ fromId: a.userId }).at(-1)!;
  emu.clock.advance(48 * 3600 + 1);
  await withTimeout(edit('post, edited', a, channel, post.id));
  assert.is(emu.delivered({ fromId: a.userId }).at(-1)!.text, 'post, edited');
});

test('MTProto: deleteMessages and channels.deleteMessages — idempotent, rights checked', async () => {
  const a = await account('mdel');
  const b = await account('mdel');
  const peer = await userPeer(a, b.username);
  const sent = (await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer, message: 'to delete', randomId: helpers.generateRandomLong() })))) as Api.UpdateShortSentMessage;
  const del = () => withTimeout(a.client.invoke(new Api.messages.DeleteMessages({ id: [sent.id], revoke: true }))) as Promise<Api.messages.AffectedMessages>;
  assert.is((await del()).ptsCount, 1);
  assert.is((await del()).ptsCount, 0, 'deleting again changes nothing and is no error');
  assert.is(emu.delivered({ fromId: a.userId })[0]!.deleted, true);

  const username = `mgroup${n}`;
  emu.createChat({ type: 'supergroup', title: 'G', username, members: [{ id: a.userId, role: 'creator' }, { id: b.userId, role: 'member' }] });
  const chanA = await channelPeer(a, username);
  const chanB = await channelPeer(b, username);
  await withTimeout(b.client.invoke(new Api.messages.SendMessage({ peer: chanB, message: 'by b', randomId: helpers.generateRandomLong() })));
  later();
  await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer: chanA, message: 'by a', randomId: helpers.generateRandomLong() })));
  const [byB, byA] = emu.delivered().filter((m) => m.text === 'by b' || m.text === 'by a');
  const channelOf = (p: Api.InputPeerChannel) => new Api.InputChannel({ channelId: p.channelId, accessHash: p.accessHash });
  assert.is(await rpcErrorOf(b.client.invoke(new Api.channels.DeleteMessages({ channel: channelOf(chanB), id: [byA!.id] }))), 'MESSAGE_DELETE_FORBIDDEN');
  const own = (await withTimeout(b.client.invoke(new Api.channels.DeleteMessages({ channel: channelOf(chanB), id: [byB!.id] })))) as Api.messages.AffectedMessages;
  assert.is(own.ptsCount, 1);
  const asCreator = (await withTimeout(a.client.invoke(new Api.channels.DeleteMessages({ channel: channelOf(chanA), id: [byA!.id, 12345] })))) as Api.messages.AffectedMessages;
  assert.is(asCreator.ptsCount, 1, 'an unknown id is skipped');
});

// ---- Bot API ----

interface Envelope { ok: boolean; result?: any; error_code?: number; description?: string }

async function call(token: string, method: string, params: Record<string, unknown>): Promise<{ status: number; body: Envelope }> {
  const res = await fetch(`${emu.botApi}/bot${token}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return { status: res.status, body: (await res.json()) as Envelope };
}

async function multipart(token: string, method: string, fields: Record<string, string>, file?: { field: string; data: Buffer; name: string; type: string }) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (file) form.append(file.field, new Blob([file.data], { type: file.type }), file.name);
  const res = await fetch(`${emu.botApi}/bot${token}/${method}`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as Envelope };
}

async function botFixture() {
  n++;
  const bot = emu.createBot({ username: `media${n}_bot` });
  const { userId } = await emu.createUser({ phone: `+44770061${String(1000 + n)}`, firstName: 'Vic' });
  return { bot, userId };
}

test('Bot API: sendDocument by multipart, sendPhoto by URL (this machine only), a file_id again; limits', async () => {
  const { bot, userId } = await botFixture();
  const file = randomBytes(3 * MB);
  const doc = await multipart(bot.token, 'sendDocument', { chat_id: String(userId), caption: 'doc' }, { field: 'document', data: file, name: 'a.pdf', type: 'application/pdf' });
  assert.is(doc.status, 200, JSON.stringify(doc.body));
  assert.is(doc.body.result.document.file_size, file.length);
  assert.is(doc.body.result.caption, 'doc');
  const photo = randomBytes(200_000);
  served.set('/cat.jpg', photo);
  later();
  const byUrl = await call(bot.token, 'sendPhoto', { chat_id: userId, photo: `${filesBase}/cat.jpg` });
  assert.is(byUrl.status, 200, JSON.stringify(byUrl.body));
  assert.ok(Array.isArray(byUrl.body.result.photo));
  later();
  const again = await call(bot.token, 'sendDocument', { chat_id: userId, document: doc.body.result.document.file_id });
  assert.is(again.status, 200);
  const got = emu.delivered({ fromId: bot.botId });
  assert.equal(got.map((m) => [m.media!.type, m.media!.size, m.media!.sha256]), [
    ['document', file.length, sha(file)], ['photo', photo.length, sha(photo)], ['document', file.length, sha(file)],
  ]);
  later();
  assert.equal((await call(bot.token, 'sendPhoto', { chat_id: userId, photo: 'https://example.com/cat.jpg' })).body.description, 'Bad Request: failed to get HTTP URL content');
  served.set('/huge.jpg', randomBytes(6 * MB));
  assert.equal((await call(bot.token, 'sendPhoto', { chat_id: userId, photo: `${filesBase}/huge.jpg` })).body.description, 'Bad Request: wrong file identifier/HTTP URL specified', 'photos by URL: 5 MB');
  const bigPhoto = await multipart(bot.token, 'sendPhoto', { chat_id: String(userId) }, { field: 'photo', data: randomBytes(11 * MB), name: 'p.jpg', type: 'image/jpeg' });
  assert.equal([bigPhoto.status, bigPhoto.body.description], [400, 'Bad Request: PHOTO_SAVE_FILE_INVALID']);
  const none = await call(bot.token, 'sendVideo', { chat_id: userId });
  assert.equal(none.body.description, 'Bad Request: there is no video in the request');
});

test('Bot API: a multipart upload over 50 MB → 413 Request Entity Too Large, nothing delivered', async () => {
  const { bot, userId } = await botFixture();
  const r = await multipart(bot.token, 'sendDocument', { chat_id: String(userId) }, { field: 'document', data: Buffer.alloc(51 * MB), name: 'big.bin', type: 'application/octet-stream' });
  assert.equal([r.status, r.body.description], [413, 'Request Entity Too Large']);
  assert.equal(emu.delivered({ fromId: bot.botId }), []);
});

test('Bot API: editMessageText / editMessageCaption / deleteMessage with Telegram\'s answers; a bot deletes only within 48 h', async () => {
  const { bot, userId } = await botFixture();
  const text = await call(bot.token, 'sendMessage', { chat_id: userId, text: 'v1' });
  const id = text.body.result.message_id;
  const edited = await call(bot.token, 'editMessageText', { chat_id: userId, message_id: id, text: 'v2' });
  assert.equal([edited.body.result.text, typeof edited.body.result.edit_date], ['v2', 'number']);
  const same = await call(bot.token, 'editMessageText', { chat_id: userId, message_id: id, text: 'v2' });
  assert.match(same.body.description!, /^Bad Request: message is not modified/);
  assert.is((await call(bot.token, 'editMessageCaption', { chat_id: userId, message_id: id, caption: 'c' })).body.description, 'Bad Request: there is no caption in the message to edit');
  assert.is((await call(bot.token, 'editMessageText', { chat_id: userId, message_id: 999_999, text: 'x' })).body.description, 'Bad Request: message to edit not found');
  later();
  const doc = await multipart(bot.token, 'sendDocument', { chat_id: String(userId), caption: 'c1' }, { field: 'document', data: randomBytes(1000), name: 'a.txt', type: 'text/plain' });
  const docId = doc.body.result.message_id;
  assert.is((await call(bot.token, 'editMessageText', { chat_id: userId, message_id: docId, text: 'x' })).body.description, 'Bad Request: there is no text in the message to edit');
  assert.is((await call(bot.token, 'editMessageCaption', { chat_id: userId, message_id: docId, caption: 'c2' })).body.result.caption, 'c2');
  assert.is((await call(bot.token, 'deleteMessage', { chat_id: userId, message_id: id })).body.result, true);
  assert.is((await call(bot.token, 'deleteMessage', { chat_id: userId, message_id: id })).body.description, 'Bad Request: message to delete not found');
  const log = emu.delivered({ fromId: bot.botId });
  assert.equal(log.map((m) => [m.text, m.edits ?? 0, m.deleted ?? false]), [['v2', 1, true], ['c2', 1, false]]);

  const username = `mg${n}`;
  const { chatId } = emu.createChat({ type: 'supergroup', title: 'G', username, members: [{ id: bot.botId, role: 'admin' }] });
  const inGroup = await call(bot.token, 'sendMessage', { chat_id: chatId, text: 'old' });
  emu.clock.advance(48 * 3600 + 1);
  assert.is((await call(bot.token, 'deleteMessage', { chat_id: chatId, message_id: inGroup.body.result.message_id })).body.description, "Bad Request: message can't be deleted");
  assert.is((await call(bot.token, 'deleteMessage', { chat_id: userId, message_id: docId })).body.description, "Bad Request: message can't be deleted", 'in a private chat too');
  // Editing has no such limit for a bot's own messages.
  assert.is((await call(bot.token, 'editMessageCaption', { chat_id: userId, message_id: docId, caption: 'c3' })).body.result.caption, 'c3');
});

test.run();
