import type postgres from 'postgres';
import { transaction, type Tx } from './transaction.ts';

type Sql = postgres.Sql | postgres.TransactionSql | Tx;

// Shard leases and node rows (migrations/012_cluster.sql). Every expiry is judged by the database's
// clock (now()); nodes compare only their own monotonic readings against their own deadlines.

/** What a write made on behalf of a shard owner carries: it applies only while this lease is current. */
export interface Fence { node: string; epoch: number }

export interface Lease { shard: number; epoch: number }

export interface LeaseRow { shard: number; owner: string | null; epoch: number; expires_at: Date | null }
export interface NodeRow { id: string; host: string; pid: number; url: string | null; started_at: Date; last_seen_at: Date }

const secs = (ms: number) => ms / 1000;

/**
 * The condition a fenced write adds to its WHERE: the lease row is locked (FOR SHARE) for the rest of
 * the transaction, so an acquirer's epoch bump waits for this write to commit or sees it refused.
 */
export function fenceClause(sql: Sql, shard: postgres.PendingQuery<postgres.Row[]> | number, fence: Fence | undefined): postgres.PendingQuery<postgres.Row[]> {
  if (!fence) return sql``;
  return sql`and exists (select 1 from shard_leases l where l.shard = ${shard} and l.owner = ${fence.node} and l.epoch = ${fence.epoch} for share)`;
}

export async function registerNode(sql: Sql, n: { id: string; host: string; pid: number; url?: string }): Promise<void> {
  await sql`
    insert into cluster_nodes (id, host, pid, url) values (${n.id}, ${n.host}, ${n.pid}, ${n.url ?? null})
    on conflict (id) do update set host = excluded.host, pid = excluded.pid, url = excluded.url, started_at = now(), last_seen_at = now()`;
}

/** The heartbeat; re-registers a row someone removed (a peer that judged this node dead). */
export async function touchNode(sql: Sql, n: { id: string; host: string; pid: number; url?: string }): Promise<void> {
  const r = await sql`update cluster_nodes set last_seen_at = now() where id = ${n.id}`;
  if (r.count === 0) await registerNode(sql, n);
}

/** Where peers reach the node (known once its HTTP server listens). */
export async function setNodeUrl(sql: Sql, id: string, url: string): Promise<void> {
  await sql`update cluster_nodes set url = ${url} where id = ${id}`;
}

export async function removeNode(sql: Sql, id: string): Promise<void> {
  await sql`delete from cluster_nodes where id = ${id}`;
}

/** Nodes whose heartbeat is younger than the lease TTL. */
export async function liveNodes(sql: Sql, ttlMs: number): Promise<NodeRow[]> {
  return sql<NodeRow[]>`
    select id, host, pid, url, started_at, last_seen_at from cluster_nodes
    where last_seen_at > now() - make_interval(secs => ${secs(ttlMs)})
    order by id`;
}

export async function nodesOnHost(sql: Sql, host: string): Promise<NodeRow[]> {
  return sql<NodeRow[]>`select id, host, pid, url, started_at, last_seen_at from cluster_nodes where host = ${host}`;
}

/** A node known dead (its process is gone): its row and its leases, freed at once. */
export async function forgetNode(sql: Sql, id: string): Promise<number> {
  const r = await sql`update shard_leases set owner = null, expires_at = null where owner = ${id}`;
  await removeNode(sql, id);
  return r.count;
}

/** Extends the leases still held at these epochs; answers the shards renewed. */
export async function renewLeases(sql: Sql, node: string, held: Lease[], ttlMs: number): Promise<number[]> {
  if (held.length === 0) return [];
  const rows = await sql<{ shard: number }[]>`
    update shard_leases l set expires_at = now() + make_interval(secs => ${secs(ttlMs)})
    from unnest(${sql.array(held.map((h) => h.shard))}::int[], ${sql.array(held.map((h) => h.epoch))}::bigint[]) as t(shard, epoch)
    where l.shard = t.shard and l.epoch = t.epoch and l.owner = ${node}
    returning l.shard`;
  return rows.map((r) => r.shard);
}

/**
 * A lease just acquired. `expiredMs` is set when it was taken from an owner that did not give it
 * back (`previousOwner`): how long ago, by the database's clock, that owner's lease ran out.
 */
export interface Acquired extends Lease { previousOwner?: string; expiredMs?: number }

/** Compare-and-set: up to `max` shards that are free or expired become this node's, each at epoch + 1. */
export async function acquireLeases(sql: Sql, node: string, max: number, ttlMs: number): Promise<Acquired[]> {
  if (max <= 0) return [];
  const rows = await sql<{ shard: number; epoch: string; previous_owner: string | null; expired_ms: number | null }[]>`
    update shard_leases l set owner = ${node}, epoch = l.epoch + 1, expires_at = now() + make_interval(secs => ${secs(ttlMs)})
    from (
      select shard, owner, expires_at from shard_leases
      where owner is null or expires_at is null or expires_at < now()
      order by shard
      limit ${max}
      for update skip locked
    ) free
    where l.shard = free.shard and (l.owner is null or l.expires_at is null or l.expires_at < now())
    returning l.shard, l.epoch, free.owner as previous_owner,
      case when free.owner is not null and free.expires_at is not null
        then (extract(epoch from now() - free.expires_at) * 1000)::float8 end as expired_ms`;
  return rows.map((r) => ({
    shard: r.shard, epoch: Number(r.epoch),
    ...(r.previous_owner !== null && r.expired_ms !== null ? { previousOwner: r.previous_owner, expiredMs: Number(r.expired_ms) } : {}),
  }));
}

/** Gives leases back (only those still held at these epochs); answers how many. */
export async function releaseLeases(sql: Sql, node: string, held: Lease[]): Promise<number> {
  if (held.length === 0) return 0;
  const r = await sql`
    update shard_leases l set owner = null, expires_at = null
    from unnest(${sql.array(held.map((h) => h.shard))}::int[], ${sql.array(held.map((h) => h.epoch))}::bigint[]) as t(shard, epoch)
    where l.shard = t.shard and l.epoch = t.epoch and l.owner = ${node}`;
  return r.count;
}

export async function leaseHeld(sql: Sql, shard: number, fence: Fence): Promise<boolean> {
  const rows = await sql`select 1 from shard_leases where shard = ${shard} and owner = ${fence.node} and epoch = ${fence.epoch}`;
  return rows.length > 0;
}

export async function listLeases(sql: Sql): Promise<LeaseRow[]> {
  const rows = await sql<(Omit<LeaseRow, 'epoch'> & { epoch: string })[]>`
    select shard, case when expires_at > now() then owner end as owner, epoch, case when expires_at > now() then expires_at end as expires_at
    from shard_leases order by shard`;
  return rows.map((r) => ({ ...r, epoch: Number(r.epoch) }));
}

export async function leaseCount(sql: Sql): Promise<number> {
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from shard_leases`;
  return r!.n;
}

/**
 * SHARDS changed: every connection and its messages move to shard = hash mod n (src/shard.ts), and
 * the lease rows are remade. Only while no other node runs (the caller checks); queued messages are
 * published again to their new queues.
 */
export async function remapShards(sql: postgres.Sql, n: number): Promise<void> {
  await transaction(sql, async (tx) => {
    await tx`lock table shard_leases in exclusive mode`;
    await tx`update connections set shard = (('x' || substr(encode(sha256(id::text::bytea), 'hex'), 1, 8))::bit(32)::bigint % ${n})::integer`;
    await tx`update messages m set shard = c.shard from connections c where c.id = m.connection_id and m.shard <> c.shard`;
    await tx`update messages set published_at = null, publish_seq = publish_seq + 1 where status = 'queued' and published_at is not null`;
    await tx`delete from shard_leases`;
    await tx`insert into shard_leases (shard) select generate_series(0, ${n - 1}::int)`;
  });
}

/** The node that holds a shard now (lease unexpired, heartbeat younger than the TTL) and where it listens. */
export async function shardOwner(sql: Sql, shard: number, ttlMs: number): Promise<{ node: string; url: string | null } | undefined> {
  const [row] = await sql<{ node: string; url: string | null }[]>`
    select l.owner as node, n.url from shard_leases l join cluster_nodes n on n.id = l.owner
    where l.shard = ${shard} and l.expires_at > now() and n.last_seen_at > now() - make_interval(secs => ${secs(ttlMs)})`;
  return row;
}

// Nodes tell each other of joins, releases and stops on one channel, so a change is acted on at once
// instead of at the next renewal round.
const clusterChannel = 'integration_cluster';

export async function listenCluster(sql: postgres.Sql, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
  const sub = await sql.listen(clusterChannel, onPayload);
  return () => sub.unlisten();
}

export async function notifyCluster(sql: postgres.Sql, payload: string): Promise<void> {
  await sql.notify(clusterChannel, payload);
}
