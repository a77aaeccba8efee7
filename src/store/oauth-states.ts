import type postgres from 'postgres';

type Sql = postgres.Sql | postgres.TransactionSql;

// The states of authorize URLs handed out (migration 011): stored by hash, single use, expiring.

export async function insertOAuthState(sql: Sql, row: { stateHash: string; connectionId: string; platform: string; returnTo?: string; expiresAt: Date }): Promise<void> {
  await sql`
    insert into oauth_states (state_hash, connection_id, platform, return_to, expires_at)
    values (${row.stateHash}, ${row.connectionId}, ${row.platform}, ${row.returnTo ?? null}, ${row.expiresAt})`;
}

/**
 * Marks a state used and answers its connection, or undefined when it is unknown, of another platform,
 * used or expired. One update: two callbacks racing with the same state cannot both win.
 */
export async function consumeOAuthState(sql: Sql, stateHash: string, platform: string): Promise<{ connectionId: string; owner: string; returnTo: string | null } | undefined> {
  const rows = await sql<Array<{ connection_id: string; owner: string; return_to: string | null }>>`
    update oauth_states s set used_at = now()
      from connections c
     where s.state_hash = ${stateHash} and s.platform = ${platform} and s.used_at is null and s.expires_at > now()
       and c.id = s.connection_id
    returning s.connection_id, c.owner, s.return_to`;
  const r = rows[0];
  return r ? { connectionId: r.connection_id, owner: r.owner, returnTo: r.return_to } : undefined;
}

/** A new authorize URL makes the older ones of the connection useless. */
export async function retireOAuthStates(sql: Sql, connectionId: string): Promise<void> {
  await sql`update oauth_states set used_at = now() where connection_id = ${connectionId} and used_at is null`;
}
