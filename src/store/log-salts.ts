import { randomBytes } from 'node:crypto';
import type postgres from 'postgres';

// The per-caller salts of the log pseudonyms (src/observability/subjects.ts). A salt is made the
// first time a caller is logged and lives until DELETE /v1/me deletes it with the caller's data.

type Sql = postgres.Sql | postgres.TransactionSql;

// 16 bytes: 128 bits, so the salt alone cannot be guessed; its fixed length keeps salt ‖ sub unambiguous.
export const saltBytes = 16;

/** The caller's salt, made on first use; two processes making it at once agree on one. */
export async function saltOf(sql: Sql, sub: string): Promise<Buffer> {
  const found = await findSalt(sql, sub);
  if (found) return found;
  const ours = randomBytes(saltBytes);
  await sql`insert into log_salts (sub, salt) values (${sub}, ${ours}) on conflict (sub) do nothing`;
  // Read back rather than returning ours: the row of a concurrent first use may have won. None at
  // all means an erasure ran in between: ours is then stored nowhere, which is what erasure wants.
  return (await findSalt(sql, sub)) ?? ours;
}

/** The caller's salt if one is stored (never makes one): for looking a live caller's lines up. */
export async function findSalt(sql: Sql, sub: string): Promise<Buffer | undefined> {
  const [r] = await sql<{ salt: Buffer }[]>`select salt from log_salts where sub = ${sub}`;
  return r?.salt;
}

/** Forgets the caller's salt: their logged hash can no longer be recomputed. True when one existed. */
export async function deleteSalt(sql: Sql, sub: string): Promise<boolean> {
  const r = await sql`delete from log_salts where sub = ${sub}`;
  return r.count > 0;
}
