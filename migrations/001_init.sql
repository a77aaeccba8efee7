-- Connections: one row per account or bot on a platform. The machine's persisted snapshot lives here
-- with its machine_version; secrets live only encrypted, in connection_secrets.
create table connections (
  id              uuid primary key,
  owner           text not null,
  platform        text not null default 'telegram',
  kind            text not null check (kind in ('user', 'bot')),
  status          text not null default 'connecting'
                  check (status in ('connecting', 'awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'active', 'error', 'stopped')),
  status_since    timestamptz not null default now(),
  display_name    text,
  username        text,
  platform_user_id text,
  phone_masked    text,
  login           jsonb,                 -- { method, codeType?, qr?, passwordHint? } while logging in
  error           jsonb,                 -- { code, message, retryAt? }
  snapshot        jsonb,
  machine_version integer not null default 1,
  shard           integer not null,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  last_active_at  timestamptz
);
-- Owner-scoped listing with keyset pagination on (created_at, id).
create index connections_owner_created on connections (owner, created_at, id);
create index connections_status on connections (status);
-- One bot token may be connected once per owner.
create unique index connections_owner_bot on connections (owner, platform_user_id) where kind = 'bot';

-- Ciphertext only (keyring output, e.g. "local:v3:..." or "vault:v2:..."); never selected into API answers.
create table connection_secrets (
  connection_id uuid not null references connections (id) on delete cascade,
  name          text not null check (name in ('session', 'bot_token', 'phone', 'password_hint', 'login_state')),
  ciphertext    text not null,
  updated_at    timestamptz not null default now(),
  primary key (connection_id, name)
);

create table chats (
  id               uuid primary key,
  owner            text not null,
  connection_id    uuid not null references connections (id) on delete cascade,
  platform_chat_id text not null,
  type             text not null check (type in ('channel', 'group', 'supergroup', 'private')),
  title            text not null default '',
  username         text,
  is_admin         boolean not null default false,
  can_send         boolean not null default false,
  rights           jsonb not null default '{}',
  checked_at       timestamptz not null default now(),
  created_at       timestamptz not null default now(),
  unique (connection_id, platform_chat_id)
);
create index chats_owner on chats (owner, connection_id);

-- Messages are the outbox: the row commits with its audit entry before the API answers 202.
create table messages (
  id                  uuid primary key,
  owner               text not null,
  connection_id       uuid not null references connections (id) on delete cascade,
  chat                text not null,         -- as the caller gave it: @name, numeric id or our chat id
  platform_chat_id    text,
  text                text not null,
  parse_mode          text check (parse_mode in ('html', 'markdown')),
  silent              boolean not null default false,
  reply_to            text,
  priority            text not null default 'normal' check (priority in ('high', 'normal', 'low')),
  status              text not null default 'queued' check (status in ('queued', 'sending', 'sent', 'failed')),
  attempts            integer not null default 0,
  platform_message_id text,
  error               jsonb,
  idempotency_key     text,
  request_hash        text,
  shard               integer not null,
  available_at        timestamptz not null default now(),  -- not before: pacing, flood waits, retries
  published_at        timestamptz,                         -- relayed to RabbitMQ
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  sent_at             timestamptz,
  search              tsvector generated always as (to_tsvector('simple', text)) stored
);
create unique index messages_idempotency on messages (owner, idempotency_key) where idempotency_key is not null;
create index messages_owner_created on messages (owner, created_at, id);
create index messages_pending on messages (available_at) where status in ('queued', 'sending');
create index messages_unpublished on messages (created_at) where published_at is null and status = 'queued';
create index messages_search on messages using gin (search);

-- Append-only: written in the same transaction as the change it records.
create table audit (
  id      bigserial primary key,
  at      timestamptz not null default now(),
  owner   text not null,
  actor   text not null,
  action  text not null,
  target  text,
  details jsonb not null default '{}'
);
create index audit_owner on audit (owner, id desc);
create index audit_at on audit (at);
