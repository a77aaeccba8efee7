-- Messages beyond text (API.md): uploaded files, media on messages, edits, deletes, `cancelled`.

-- A file a caller stored for media messages (POST /v1/uploads), or one the service fetched from a
-- message's media URL. The bytes live in upload_chunks, 1 MiB a row, so that neither a write nor a
-- read ever holds the whole file. `completed_at` is null while the body is still arriving: such a row
-- is never used, and expires at the upload deadline. A complete one expires UPLOAD_RETENTION_HOURS
-- after it was made; the retention job deletes expired uploads that no unsent message uses.
create table uploads (
  id           uuid primary key,
  owner        text not null,
  content_type text not null,
  filename     text not null,
  size         bigint not null default 0,
  sha256       text,
  source_url   text,
  created_at   timestamptz not null default now(),
  completed_at timestamptz,
  expires_at   timestamptz not null
);
create index uploads_owner on uploads (owner, created_at);
create index uploads_expires on uploads (expires_at);

create table upload_chunks (
  upload_id uuid not null references uploads (id) on delete cascade,
  seq       integer not null,
  data      bytea not null,
  primary key (upload_id, seq)
);
-- Media is already compressed: TOAST would try pglz on every 1 MiB value and give up (CPU for nothing).
alter table upload_chunks alter column data set storage external;

-- media: { type, uploadId?, url?, caption?, filename?, contentType?, size?, sha256? } as the message
-- will show it; upload_id: the file it is sent from (the caller's upload, or the fetched URL's), kept
-- while the message is unsent; null once the upload is gone, the facts stay in `media`.
alter table messages add column media jsonb;
alter table messages add column upload_id uuid references uploads (id) on delete set null;
create index messages_upload on messages (upload_id) where upload_id is not null;

-- Edits and deletes ride the outbox as rows of their own (same relay, queues, pacing, leases, retries
-- as sends): `op` names the operation, `target_id` the message it changes, `text` the new text (empty
-- for a delete). They are never listed as messages; the target shows their effect (edited_at,
-- deleted_at) and the pending one (src/store/operations.ts).
alter table messages add column op text check (op in ('edit', 'delete'));
alter table messages add column target_id uuid references messages (id) on delete cascade;
alter table messages add constraint messages_op_target check ((op is null) = (target_id is null));
create index messages_target on messages (target_id, created_at) where target_id is not null;
alter table messages add column edited_at timestamptz;
alter table messages add column deleted_at timestamptz;

alter table messages drop constraint messages_status_check;
alter table messages add constraint messages_status_check
  check (status in ('queued', 'sending', 'sent', 'failed', 'cancelled'));
