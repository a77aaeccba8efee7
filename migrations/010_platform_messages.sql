-- Messages through platforms that report delivery later (WhatsApp statuses by webhook) and send templates.
-- platform_status: the latest status the platform reported after the send (sent → delivered → read);
-- a `failed` status fails the message itself. template: a WhatsApp template sent instead of text.
alter table messages
  add column platform_status text check (platform_status in ('sent', 'delivered', 'read')),
  add column platform_status_at timestamptz,
  add column template jsonb;

-- Statuses arrive by the platform's message id (a wamid), scoped to the connection they name.
create index messages_platform_id on messages (connection_id, platform_message_id) where platform_message_id is not null;

-- The last message each customer sent to a connection's account (WhatsApp: the 24-hour customer service
-- window), from signed webhooks; free-form messages to a customer outside it are refused at accept.
create table service_windows (
  connection_id   uuid not null references connections (id) on delete cascade,
  peer            text not null,
  last_inbound_at timestamptz not null,
  primary key (connection_id, peer)
);
