-- Several daemons on one database (ARCHITECTURE.md "Several daemons, one owner per connection").
-- A node row per running daemon, refreshed by its heartbeat; `host` and `pid` let a daemon restarted
-- on the same host take back at once the shards of one that died there (its pid no longer runs).
create table cluster_nodes (
  id            text primary key,
  host          text not null,
  pid           integer not null,
  -- Where other nodes reach this one (forwarded calls); null when it does not say.
  url           text,
  started_at    timestamptz not null default now(),
  last_seen_at  timestamptz not null default now()
);

-- One lease per shard. `epoch` grows by one at every acquisition; a write made for a shard names the
-- epoch it holds, so a node that lost the lease (frozen past its deadline) cannot write any more.
-- Expiry is judged by the database clock only (now()), never by a node's.
create table shard_leases (
  shard       integer primary key check (shard >= 0),
  owner       text,
  epoch       bigint not null default 0,
  expires_at  timestamptz
);
create index shard_leases_owner on shard_leases (owner) where owner is not null;

insert into shard_leases (shard) select generate_series(0, 63);

-- SHARDS goes from 16 to 64, once: shard = first 4 bytes of sha256(id) as an unsigned integer mod 64
-- (src/shard.ts computes the same). Queued messages get a fresh publish_seq and are published again to
-- their new shard's queue; copies already in the old queues are then stale and acked away unsent.
update connections set shard = (('x' || substr(encode(sha256(id::text::bytea), 'hex'), 1, 8))::bit(32)::bigint % 64)::integer;
update messages m set shard = c.shard from connections c where c.id = m.connection_id and m.shard <> c.shard;
update messages set published_at = null, publish_seq = publish_seq + 1 where status = 'queued' and published_at is not null;
