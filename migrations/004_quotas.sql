-- Per-owner quotas (src/store/quotas.ts), queue expiry and the streamed export (src/store/personal-data.ts).
-- Counting an owner's unsent messages reads only these entries (at most the quota, 10,000 by
-- default), never the owner's sent history, which retention lets grow for 30 days.
create index messages_owner_unsent on messages (owner) where status in ('queued', 'sending');
-- The hourly expiry finds queued messages past MESSAGE_QUEUE_TTL_HOURS without scanning the outbox.
create index messages_queued_created on messages (created_at) where status = 'queued';
-- The export pages an owner's chats in (created_at, id) order, like connections and messages.
create index chats_owner_created on chats (owner, created_at, id);
