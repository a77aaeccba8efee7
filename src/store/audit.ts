import type postgres from 'postgres';

// Append-only audit trail. Callers pass the transaction of the change they record, so the entry
// commits or rolls back with it. Details never carry secrets (the callers pass ids and codes).

type Sql = postgres.Sql | postgres.TransactionSql;

export interface AuditEntry { owner: string; actor: string; action: string; target?: string; details?: Record<string, unknown> }
export interface AuditRow { id: string; at: Date; owner: string; actor: string; action: string; target: string | null; details: Record<string, unknown> }

export async function recordAudit(sql: Sql, e: AuditEntry): Promise<void> {
  await sql`insert into audit (owner, actor, action, target, details)
            values (${e.owner}, ${e.actor}, ${e.action}, ${e.target ?? null}, ${sql.json((e.details ?? {}) as never)})`;
}

export async function listAudit(sql: Sql, f: { owner?: string; limit: number; before?: string }): Promise<AuditRow[]> {
  return sql<AuditRow[]>`
    select id::text, at, owner, actor, action, target, details from audit
    where true
      ${f.owner !== undefined ? sql`and owner = ${f.owner}` : sql``}
      ${f.before ? sql`and id < ${f.before}::bigint` : sql``}
    order by audit.id desc -- the bigint column: plain "id" would name the text alias above ('9' > '10')
    limit ${f.limit}`;
}

export const toAuditView = (r: AuditRow) => ({
  id: r.id, at: r.at.toISOString(), actor: r.actor, action: r.action, target: r.target, details: r.details,
});

/** Retention: deletes up to `batch` audit rows older than `cutoff`; returns how many went. */
export async function purgeAudit(sql: Sql, cutoff: Date, batch: number): Promise<number> {
  const r = await sql`delete from audit where id in (select id from audit where at < ${cutoff} order by id limit ${batch})`;
  return r.count;
}

/**
 * Owners over `cap` audit rows among those who wrote one since `since`: an owner who wrote nothing
 * since the last runs has not grown, so the job reads only recent rows, never the whole trail.
 */
export async function auditOwnersOverCap(sql: Sql, cap: number, since: Date): Promise<string[]> {
  const rows = await sql<{ owner: string }[]>`
    select recent.owner from (select distinct owner from audit where at >= ${since}) recent
    where exists (select 1 from audit a where a.owner = recent.owner order by a.id desc offset ${cap} limit 1)`;
  return rows.map((r) => r.owner);
}

/**
 * Keeps the owner's newest `cap - 1` rows, deletes the older ones `batch` at a time, and records the
 * pruning as the owner's cap-th row, so the trail says that it no longer goes back further (and
 * the next run finds the owner at the cap, not over it). Returns how many rows went.
 */
export async function pruneAuditBeyond(sql: Sql, owner: string, cap: number, batch: number): Promise<number> {
  const [oldestKept] = await sql<{ id: string; at: Date }[]>`
    select id::text, at from audit where owner = ${owner} order by id desc offset ${cap - 2} limit 1`;
  if (!oldestKept) return 0;
  let removed = 0;
  for (;;) {
    const r = await sql`
      delete from audit where id in (
        select id from audit where owner = ${owner} and id < ${oldestKept.id}::bigint order by id limit ${batch})`;
    removed += r.count;
    if (r.count < batch) break;
  }
  if (removed > 0) {
    await recordAudit(sql, {
      owner, actor: 'system', action: 'audit.pruned',
      details: { removed, cap, keptFrom: oldestKept.at.toISOString(), reason: 'AUDIT_MAX_ROWS_PER_OWNER' },
    });
  }
  return removed;
}
