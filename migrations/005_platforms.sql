-- One platform interface (src/platforms/adapter.ts): the SQL accepts what the adapters declare
-- instead of Telegram's kinds and secret names.

-- Every (platform, kind) a registered adapter declares; the daemon adds its own at start
-- (insert … on conflict do nothing), and a connection must name one of them.
create table platform_kinds (
  platform text not null,
  kind     text not null,
  primary key (platform, kind)
);
insert into platform_kinds (platform, kind) values ('telegram', 'user'), ('telegram', 'bot');

alter table connections drop constraint connections_kind_check;
alter table connections alter column platform drop default;
alter table connections add constraint connections_platform_kind_fkey
  foreign key (platform, kind) references platform_kinds (platform, kind);

-- The lifecycle's statuses (API.md), OAuth logins included.
alter table connections drop constraint connections_status_check;
alter table connections add constraint connections_status_check
  check (status in ('connecting', 'awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'awaiting-authorization', 'active', 'error', 'stopped'));

-- Secret names are the platform's; only their shape is checked.
alter table connection_secrets drop constraint connection_secrets_name_check;
alter table connection_secrets add constraint connection_secrets_name_check check (name ~ '^[a-z][a-z0-9_]{0,39}$');

-- Parking has its own column: a message waiting for its connection to be active again, released
-- at once when it is (releaseParked), instead of matching the error code it was parked with.
alter table messages add column parked boolean not null default false;
update messages set parked = true
  where status = 'queued' and error->>'code' in ('CIRCUIT_OPEN', 'CONNECTION_NOT_ACTIVE');
create index messages_parked on messages (connection_id) where parked and status = 'queued';
