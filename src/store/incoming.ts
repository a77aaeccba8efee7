// Incoming messages: stored (direction 'in', status 'received') in the same transaction as their
// message.received event, so a message is never announced without being kept, nor kept without
// being announced. Deduplicated by (connection, chat, platform message id): a platform that
// delivers the same update twice stores and announces it once.
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { appendEvent, eventsCommitted, type StoredEvent } from './events.ts';
import { transaction } from './transaction.ts';

export interface IncomingMessage {
  chat: string;
  from: string;
  text: string;
  platformMessageId: string;
  /** ISO 8601, as the platform dated it */
  date: string;
  /** what the message's file is (its bytes stay at the platform) */
  media?: { type: string; filename?: string; contentType?: string; size?: number };
}

export interface StoreIncomingResult {
  /** false when this message was stored before (a repeated update) */
  stored: boolean;
  messageId?: string;
  event?: StoredEvent;
}

export async function storeIncoming(
  sql: postgres.Sql, o: { owner: string; connectionId: string; message: IncomingMessage },
): Promise<StoreIncomingResult> {
  const { owner, connectionId, message: m } = o;
  const result = await transaction(sql, async (tx) => {
    const id = randomUUID();
    const date = Number.isFinite(Date.parse(m.date)) ? m.date : new Date().toISOString();
    // The connection gives the shard (and must still exist: a deleted connection's late update is dropped).
    const rows = await tx<{ id: string }[]>`
      insert into messages (id, owner, connection_id, chat, platform_chat_id, text, media, status, direction, sender,
                            platform_message_id, shard, created_at, updated_at, sent_at, published_at)
      select ${id}, ${owner}, c.id, ${m.chat}, ${m.chat}, ${m.text}, ${m.media ? tx.json(m.media) : null}, 'received', 'in', ${m.from},
             ${m.platformMessageId}, c.shard, now(), now(), ${date}, now()
      from connections c where c.id = ${connectionId} and c.owner = ${owner}
      on conflict (connection_id, platform_chat_id, platform_message_id) where direction = 'in' do nothing
      returning id`;
    if (rows.length === 0) return { stored: false } as StoreIncomingResult;
    const event = await appendEvent(tx, {
      customerId: owner, type: 'message.received', connectionId,
      data: { messageId: id, connectionId, chat: m.chat, from: m.from, text: m.text, ...(m.media ? { media: m.media } : {}), platformMessageId: m.platformMessageId, date },
    });
    return { stored: true, messageId: id, event };
  });
  if (result.stored) eventsCommitted();
  return result;
}
