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
