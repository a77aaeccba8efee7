-- Outgoing webhooks to the caller's own endpoints (Standard Webhooks v1, API.md "Webhooks").

-- One endpoint of a caller. `secret` and `previous_secret` are keyring ciphertexts of `whsec_…`
-- (bound to the endpoint's id as associated data), never plaintext. After a rotation the previous
-- secret keeps signing beside the new one until `previous_expires_at` (24 h). `events` holds event
-- types or '*'; `connection_ids` null means every connection of the owner. `failing_since` is the
-- start of the current run of failed attempts (null after a success): 5 days of it disables.
create table webhook_endpoints (
  id                   uuid primary key,
  owner                text not null,
  url                  text not null,
  description          text,
  events               text[] not null,
  connection_ids       uuid[],
  enabled              boolean not null default true,
  disabled_reason      text,
  secret               text not null,
  previous_secret      text,
  previous_expires_at  timestamptz,
  failing_since        timestamptz,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now()
);
create index webhook_endpoints_owner on webhook_endpoints (owner, created_at, id);

-- One event for one endpoint. `event_id` is the `webhook-id` header, the same on every attempt;
-- (endpoint_id, event_id) is unique, so feeding an event twice never delivers it twice. `body` is the
-- exact JSON sent (signed per attempt with that attempt's timestamp). A dispatcher claims a due row by
-- setting lease_owner/lease_until (FOR UPDATE SKIP LOCKED); a crashed dispatcher's lease runs out and
-- the row is claimed again, so a delivery can repeat (same webhook-id) but is never lost.
-- attempts: [{ at, httpStatus?, error?, durationMs }], the newest 20.
create table webhook_deliveries (
  id                uuid primary key,
  endpoint_id       uuid not null references webhook_endpoints (id) on delete cascade,
  owner             text not null,
  event_id          text not null,
  event_type        text not null,
  body              text not null,
  status            text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
  attempt_count     integer not null default 0,
  attempts          jsonb not null default '[]',
  next_attempt_at   timestamptz,
  lease_owner       text,
  lease_until       timestamptz,
  last_status       integer,
  last_error        text,
  response_snippet  text,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  unique (endpoint_id, event_id)
);
-- The claim probes each endpoint's earliest due rows (so a deep backlog of one endpoint never hides
-- another's), and counts each endpoint's leased rows (few: in flight, or left by a crashed dispatcher).
create index webhook_deliveries_due on webhook_deliveries (endpoint_id, next_attempt_at) where status = 'pending';
create index webhook_deliveries_leased on webhook_deliveries (endpoint_id) where lease_until is not null;
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, created_at desc, id desc);
