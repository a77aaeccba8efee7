import { AppError } from '../../errors.ts';
import type { ReceivedMessage, WebhookBatch } from '../adapter.ts';

// Webhooks of the two user platforms (their handshake and signature are every Meta app's:
// app-webhooks.ts). What each sends, as its reference shows it, and what the service makes of it — a
// `message.received` of every connection to the account it names (the route's storeReceived):
//
// Instagram (Instagram API with Instagram Login, "Webhooks"): {object: 'instagram', entry: [{id: <IG
// user id>, time, changes?: [{field, value}], messaging?: [...]}]}.
//   - `comments` / `live_comments`: value {from: {id, username}, media: {id, media_product_type}, id, text,
//     parent_id?} → chat = the media id (the post), from = the commenter's username, the comment's id.
//   - `messaging` (field `messages`): {sender: {id}, recipient: {id}, timestamp (ms), message: {mid, text,
//     is_echo?}} → chat = from = the sender's IGSID; echoes of what the account sent are skipped.
//   - `mentions` carries only {media_id, comment_id} (no text): acknowledged, not stored.
// Threads ("Webhooks for Threads"): one object per delivery, {app_id, topic, target_id (the app user),
// time, values: {field, value}}.
//   - `replies`: value {id, username, text, media_type, replied_to: {id}, root_post: {id, owner_id,
//     username}, timestamp} → chat = the root post, from = the replier's username.
//   - `mentions`: value {id, username, text, media_type, timestamp} → chat = the post that mentions.
//   - `publish` / `delete` concern the account's own posts: acknowledged, not stored.

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);

/** Seconds or milliseconds since the epoch (Meta uses both), or an ISO time such as 2024-08-07T10:33:16+0000. */
export function metaTime(v: unknown): string {
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v < 1e12 ? v * 1000 : v).toISOString();
  if (typeof v === 'string') {
    const iso = Date.parse(v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
    if (Number.isFinite(iso)) return new Date(iso).toISOString();
  }
  return new Date().toISOString();
}

const bodyOf = (raw: Buffer, platform: string): unknown => {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AppError('VALIDATION_ERROR', `not a ${platform} webhook payload: the body is not JSON`);
  }
};

export function parseInstagramWebhook(raw: Buffer): WebhookBatch {
  const invalid = (m: string) => new AppError('VALIDATION_ERROR', `not an Instagram webhook payload: ${m}`);
  const body = bodyOf(raw, 'Instagram');
  if (!isObj(body) || !Array.isArray(body.entry)) throw invalid('no entry list');
  if (body.object !== 'instagram') throw invalid(`object is ${JSON.stringify(body.object)?.slice(0, 40)}`);
  const out: WebhookBatch = { statuses: [], received: [] };
  const push = (accountId: string, message: ReceivedMessage) => out.received.push({ accountId, message });
  for (const entry of body.entry) {
    if (!isObj(entry)) throw invalid('an entry that is not an object');
    const accountId = text(entry.id);
    if (!accountId) throw invalid('an entry without id');
    for (const change of arr(entry.changes)) {
      if (!isObj(change) || !isObj(change.value)) continue;
      const v = change.value;
      if (change.field !== 'comments' && change.field !== 'live_comments') continue;
      const id = text(v.id);
      const media = isObj(v.media) ? text(v.media.id) : undefined;
      const from = isObj(v.from) ? text(v.from.username) ?? text(v.from.id) : undefined;
      if (!id || !media || !from) throw invalid('a comment without id, media.id or from');
      push(accountId, { chat: media, from, text: text(v.text) ?? '', platformMessageId: id, date: metaTime(entry.time) });
    }
    for (const m of arr(entry.messaging)) {
      if (!isObj(m) || !isObj(m.message)) continue; // reads, reactions, postbacks: nothing to store
      if (m.message.is_echo === true) continue;
      const sender = isObj(m.sender) ? text(m.sender.id) : undefined;
      const mid = text(m.message.mid);
      if (!sender || !mid) throw invalid('a message without sender.id or message.mid');
      // A message to the account arrives under the account's entry; recipient.id names it too.
      const to = (isObj(m.recipient) ? text(m.recipient.id) : undefined) ?? accountId;
      push(to, { chat: sender, from: sender, text: text(m.message.text) ?? '', platformMessageId: mid, date: metaTime(m.timestamp ?? entry.time) });
    }
  }
  return out;
}

export function parseThreadsWebhook(raw: Buffer): WebhookBatch {
  const invalid = (m: string) => new AppError('VALIDATION_ERROR', `not a Threads webhook payload: ${m}`);
  const body = bodyOf(raw, 'Threads');
  if (!isObj(body) || !isObj(body.values)) throw invalid('no values');
  const { field, value: v } = body.values;
  const out: WebhookBatch = { statuses: [], received: [] };
  if ((field !== 'replies' && field !== 'mentions') || !isObj(v)) return out;
  const root = isObj(v.root_post) ? v.root_post : undefined;
  const accountId = text(body.target_id) ?? (root ? text(root.owner_id) : undefined);
  const id = text(v.id);
  const from = text(v.username);
  if (!accountId || !id || !from) throw invalid(`a ${field} value without target_id, id or username`);
  const chat = field === 'replies' ? (root ? text(root.id) : undefined) ?? (isObj(v.replied_to) ? text(v.replied_to.id) : undefined) ?? id : id;
  out.received.push({ accountId, message: { chat, from, text: text(v.text) ?? '', platformMessageId: id, date: metaTime(v.timestamp ?? body.time) } });
  return out;
}
