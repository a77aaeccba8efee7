-- Events that are not lost (API.md): every event is stored before anyone is told about it; the
-- WebSocket (with replay), the RabbitMQ exchange and webhooks all read this one table.
--
-- `pos` is the order readers resume by ("everything after pos N"). A plain sequence default would
-- not do: two transactions take 41 and 42, 42 commits first, a reader sees 42 and moves its mark
-- past 41, which then commits and is never read. So appendEvent (src/store/events.ts) takes a
-- transaction-scoped advisory lock before drawing from the sequence, in the same statement: the
-- lock is held until COMMIT or ROLLBACK, so pos is handed out in commit order and a visible pos N
-- means every pos below N is committed or gone for good (a rolled-back one leaves a hole, never a
-- late row). The price is that event-writing transactions serialise from their append to their
-- commit, so the append is the last statement of a transaction (measured 2,151 events/s in single
-- inserts, see bench:events). A post-commit sequencer would not serialise writers but adds a poll
-- interval of latency to every event and needs a leader across daemons.
create sequence events_pos_seq as bigint;
create table events (
  pos           bigint primary key default nextval('events_pos_seq'),
  id            uuid not null unique,
  customer_id   text not null,
  type          text not null,
  connection_id uuid,
  data          jsonb not null,
  created_at    timestamptz not null default now()
);
alter sequence events_pos_seq owned by events.pos;
-- A caller's replay and log pages: after pos, in pos order, optionally one type or connection.
create index events_customer_pos on events (customer_id, pos);
create index events_created on events (created_at);

-- At-least-once consumers of the events table (the RabbitMQ publisher, webhooks): each reads after
-- its `pos` and advances it only once what it read was handed on. `holder` + `lease_until` make it a
-- lease: one holder at a time across daemons; a crashed holder's lease runs out and another takes
-- over from the last advanced pos (so it may repeat, never skip).
create table event_cursors (
  consumer    text primary key,
  pos         bigint not null default 0,
  holder      text,
  lease_until timestamptz,
  updated_at  timestamptz not null default now()
);

-- Incoming messages are stored (direction 'in', status 'received') in the same transaction as their
-- message.received event; `sender` is the platform's sender as the API shows it (`from`).
alter table messages add column direction text not null default 'out' check (direction in ('out', 'in'));
alter table messages add column sender text;
alter table messages drop constraint messages_status_check;
alter table messages add constraint messages_status_check
  check (status in ('queued', 'sending', 'sent', 'failed', 'cancelled', 'received'));
-- A platform may deliver an update twice (a reconnect replays the gap, a bot's getUpdates offset is
-- not yet confirmed): the same message in the same chat of the same connection is stored once.
create unique index messages_incoming on messages (connection_id, platform_chat_id, platform_message_id) where direction = 'in';
create index messages_owner_direction on messages (owner, direction, created_at, id);
