import type postgres from 'postgres';
import { quotaDefaults } from '../config.ts';
import { appendEvents, eventsCommitted, type NewEvent } from './events.ts';
import { checkConnectionRoom } from './quotas.ts';
import { transaction, type Tx } from './transaction.ts';
import { fenceClause, type Fence } from './leases.ts';

// Owner-scoped queries for connections and their encrypted secrets. Every query that serves a
// caller has `owner = ${owner}` in its WHERE clause: tenancy lives in SQL, not in filters after.

type Sql = postgres.Sql | postgres.TransactionSql;

export type Status = 'connecting' | 'awaiting-code' | 'awaiting-qr' | 'awaiting-2fa' | 'awaiting-authorization' | 'active' | 'error' | 'stopped';
/** A secret's name is the platform's (Telegram: session, bot_token, phone, login_state). */
export type SecretName = string;

export interface ConnectionRow {
  id: string;
  owner: string;
  platform: string;
  kind: string;
  status: Status;
  status_since: Date;
  display_name: string | null;
  username: string | null;
  platform_user_id: string | null;
  phone_masked: string | null;
  login: Record<string, unknown> | null;
  error: { code: string; message: string; retryAt?: string } | null;
  snapshot: unknown;
  machine_version: number;
  shard: number;
  created_at: Date;
  updated_at: Date;
  last_active_at: Date | null;
}

export interface Connection {
  id: string; platform: string; kind: string; status: Status; statusSince: string;
  displayName: string | null; username?: string; platformUserId?: string; phone?: string;
  login?: Record<string, unknown>; error?: { code: string; message: string; retryAt?: string };
  createdAt: string; updatedAt: string; lastActiveAt?: string;
  /** Platform quotas the service tracks (OAuth platforms), while the connection runs here. */
  quotas?: Array<{ name: string; used: number; limit: number; resetsAt: string }>;
}

export const toConnection = (r: ConnectionRow): Connection => ({
  id: r.id,
  platform: r.platform,
  kind: r.kind,
  status: r.status,
  statusSince: r.status_since.toISOString(),
  displayName: r.display_name,
  ...(r.username ? { username: r.username } : {}),
  ...(r.platform_user_id ? { platformUserId: r.platform_user_id } : {}),
  ...(r.phone_masked ? { phone: r.phone_masked } : {}),
  ...(r.login ? { login: r.login } : {}),
  ...(r.error ? { error: r.error } : {}),
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  ...(r.last_active_at ? { lastActiveAt: r.last_active_at.toISOString() } : {}),
});

export interface NewConnection {
  id: string; owner: string; platform: string; kind: string; shard: number; machineVersion: number;
  phoneMasked?: string; login?: Record<string, unknown>;
  /** Known up front for bots (getMe ran before the row exists). */
  profile?: { platformUserId: string; displayName: string; username?: string };
}

/**
 * Inserts after checking the owner's connection quota (QUOTA_EXCEEDED, nothing stored); run it in
 * the transaction that writes the rest of the connection, so the quota's lock covers the insert.
 */
export async function insertConnection(sql: Sql, row: NewConnection, maxPerOwner: number = quotaDefaults.connectionsPerOwner): Promise<ConnectionRow> {
  await checkConnectionRoom(sql, row.owner, maxPerOwner);
  const [r] = await sql<ConnectionRow[]>`
    insert into connections (id, owner, platform, kind, shard, phone_masked, login, machine_version, platform_user_id, display_name, username)
    values (${row.id}, ${row.owner}, ${row.platform}, ${row.kind}, ${row.shard}, ${row.phoneMasked ?? null}, ${row.login ? sql.json(row.login as never) : null},
            ${row.machineVersion}, ${row.profile?.platformUserId ?? null}, ${row.profile?.displayName ?? null}, ${row.profile?.username ?? null})
    returning *`;
  return r!;
}

/** The owner's connection to this platform account, if any (one account is connected once per owner). */
/** Every caller's connection to one platform account (a platform webhook names the account, not the caller). */
export async function connectionsOfAccount(sql: Sql, platform: string, platformUserId: string): Promise<Array<{ id: string; owner: string }>> {
  return sql<Array<{ id: string; owner: string }>>`
    select id, owner from connections where platform = ${platform} and platform_user_id = ${platformUserId}`;
}

export async function findByAccount(sql: Sql, owner: string, platform: string, kind: string, platformUserId: string): Promise<string | undefined> {
  const [r] = await sql<{ id: string }[]>`
    select id from connections where owner = ${owner} and platform = ${platform} and kind = ${kind} and platform_user_id = ${platformUserId}`;
  return r?.id;
}

export async function connectionIds(sql: Sql, owner: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`select id from connections where owner = ${owner}`;
  return rows.map((r) => r.id);
}

/** created_at as Postgres text with microseconds, for keyset cursors (ISO strings keep milliseconds only). */
export async function createdAtText(sql: Sql, owner: string, id: string): Promise<string | undefined> {
  const [r] = await sql<{ created_at: string }[]>`select created_at::text as created_at from connections where id = ${id} and owner = ${owner}`;
  return r?.created_at;
}

export async function getConnection(sql: Sql, owner: string, id: string): Promise<ConnectionRow | undefined> {
  const [r] = await sql<ConnectionRow[]>`select * from connections where id = ${id} and owner = ${owner}`;
  return r;
}

/** cursor.createdAt is Postgres text with microseconds; it is bound as text because postgres.js would
 * serialise a timestamptz parameter through Date and cut it to milliseconds (repeating rows). */
export interface ListFilter { status?: Status; platform?: string; kind?: string; limit: number; cursor?: { createdAt: string; id: string } }

export async function listConnections(sql: Sql, owner: string, f: ListFilter): Promise<ConnectionRow[]> {
  return sql<ConnectionRow[]>`
    select * from connections
    where owner = ${owner}
      ${f.status ? sql`and status = ${f.status}` : sql``}
      ${f.platform ? sql`and platform = ${f.platform}` : sql``}
      ${f.kind ? sql`and kind = ${f.kind}` : sql``}
      ${f.cursor ? sql`and (created_at, id) > (${f.cursor.createdAt}::text::timestamptz, ${f.cursor.id}::uuid)` : sql``}
    order by created_at, id
    limit ${f.limit}`;
}

/**
 * Every connection the supervisor should run at boot, a page at a time in id order (keyset on the
 * primary key). One statement for all rows parsed 10,000 rows with their snapshots in one turn of
 * the event loop (27–42 ms in bench:accounts); a page of 500 is a few ms, and no connection is
 * held between pages as a cursor would (the embedded database has only one).
 */
export async function* runnablePages(sql: Sql, shards: number[], pageSize = 500): AsyncGenerator<ConnectionRow[]> {
  for (let after: string | undefined; ;) {
    const rows = await sql<ConnectionRow[]>`
      select * from connections
      where shard in ${sql(shards)} and status <> 'stopped' ${after ? sql`and id > ${after}::uuid` : sql``}
      order by id limit ${pageSize}`;
    if (rows.length > 0) yield rows;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}

export interface StatePatch {
  status: Status;
  statusChanged: boolean;
  displayName?: string | null; username?: string | null; platformUserId?: string | null;
  login: Record<string, unknown> | null;
  error: Record<string, unknown> | null;
  snapshot: unknown;
  machineVersion: number;
  active: boolean;
}

/**
 * false when nothing was written: the row is gone, or the fence's lease is no longer current.
 * `events` (the connection.status events of the changes this state went through since the last
 * write) are stored in the same transaction, and only if the row is written.
 */
export async function saveState(sql: postgres.Sql, id: string, p: StatePatch, fence?: Fence, events: readonly NewEvent[] = []): Promise<boolean> {
  if (events.length === 0) return writeState(sql, id, p, fence);
  const written = await transaction(sql, async (tx) => {
    if (!(await writeState(tx, id, p, fence))) return false;
    await appendEvents(tx, events);
    return true;
  });
  if (written) eventsCommitted();
  return written;
}

async function writeState(sql: Sql | Tx, id: string, p: StatePatch, fence?: Fence): Promise<boolean> {
  const r = await sql`
    update connections set
      status = ${p.status},
      status_since = case when ${p.statusChanged} then now() else status_since end,
      display_name = coalesce(${p.displayName ?? null}, display_name),
      username = coalesce(${p.username ?? null}, username),
      platform_user_id = coalesce(${p.platformUserId ?? null}, platform_user_id),
      login = ${p.login ? sql.json(p.login as never) : null},
      error = ${p.error ? sql.json(p.error as never) : null},
      snapshot = ${sql.json(p.snapshot as never)},
      machine_version = ${p.machineVersion},
      last_active_at = case when ${p.active} then now() else last_active_at end,
      updated_at = now()
    where id = ${id} ${fenceClause(sql, sql`connections.shard`, fence)}`;
  return r.count > 0;
}

export async function deleteConnection(sql: Sql, owner: string, id: string): Promise<boolean> {
  const rows = await sql`delete from connections where id = ${id} and owner = ${owner} returning id`;
  return rows.length > 0;
}

/** With a fence, written only while its lease is current (false when refused). */
export async function putSecret(sql: Sql, connectionId: string, name: SecretName, ciphertext: string, fence?: Fence): Promise<boolean> {
  const r = await sql`
    insert into connection_secrets (connection_id, name, ciphertext)
    select ${connectionId}, ${name}, ${ciphertext}
    ${fence ? sql`from connections c where c.id = ${connectionId} ${fenceClause(sql, sql`c.shard`, fence)}` : sql``}
    on conflict (connection_id, name) do update set ciphertext = excluded.ciphertext, updated_at = now()`;
  return r.count > 0;
}

export async function getSecrets(sql: Sql, connectionId: string): Promise<Partial<Record<SecretName, string>>> {
  const rows = await sql<{ name: SecretName; ciphertext: string }[]>`
    select name, ciphertext from connection_secrets where connection_id = ${connectionId}`;
  return Object.fromEntries(rows.map((r) => [r.name, r.ciphertext]));
}

export async function deleteSecret(sql: Sql, connectionId: string, name: SecretName, fence?: Fence): Promise<boolean> {
  const r = await sql`
    delete from connection_secrets s where s.connection_id = ${connectionId} and s.name = ${name}
    ${fence ? sql`and exists (select 1 from connections c where c.id = s.connection_id ${fenceClause(sql, sql`c.shard`, fence)})` : sql``}`;
  return r.count > 0;
}

/** A connection row by id alone (a peer announced it; the owner is not known here). */
export async function getConnectionById(sql: Sql, id: string): Promise<ConnectionRow | undefined> {
  const [r] = await sql<ConnectionRow[]>`select * from connections where id = ${id}`;
  return r;
}

export interface SecretRow { connection_id: string; name: SecretName; ciphertext: string }

/** One page of ciphertexts in primary-key order (keyset pagination: no offset scans, no long transaction). */
export async function secretsPage(sql: Sql, after: { id: string; name: string } | null, limit: number): Promise<SecretRow[]> {
  return sql<SecretRow[]>`
    select connection_id, name, ciphertext
    from connection_secrets
    ${after ? sql`where (connection_id, name) > (${after.id}::uuid, ${after.name})` : sql``}
    order by connection_id, name
    limit ${limit}`;
}

/** Replaces a ciphertext only if it is still `expected` (compare-and-set); false when someone changed it. */
export async function replaceSecret(sql: Sql, row: SecretRow, next: string): Promise<boolean> {
  const res = await sql`
    update connection_secrets set ciphertext = ${next}, updated_at = now()
    where connection_id = ${row.connection_id} and name = ${row.name} and ciphertext = ${row.ciphertext}`;
  return res.count === 1;
}

/** The (platform, kind) pairs this daemon's adapters declare, for the connections constraint. */
export async function declarePlatformKinds(sql: Sql, pairs: Array<{ platform: string; kind: string }>): Promise<void> {
  if (pairs.length === 0) return;
  await sql`
    insert into platform_kinds (platform, kind)
    select * from unnest(${sql.array(pairs.map((p) => p.platform))}::text[], ${sql.array(pairs.map((p) => p.kind))}::text[])
    on conflict do nothing`;
}
