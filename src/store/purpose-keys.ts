import type postgres from 'postgres';

// Keys for a purpose other than encryption, stored as keyring ciphertexts (src/crypto/purpose-keys.ts).

type Sql = postgres.Sql | postgres.TransactionSql;

export interface PurposeKeyRow { purpose: string; ciphertext: string }

export async function getPurposeKey(sql: Sql, purpose: string): Promise<string | undefined> {
  const [r] = await sql<PurposeKeyRow[]>`select purpose, ciphertext from purpose_keys where purpose = ${purpose}`;
  return r?.ciphertext;
}

/** Stores the key unless one exists already; returns the stored ciphertext (ours or the first one). */
export async function putPurposeKeyOnce(sql: Sql, purpose: string, ciphertext: string): Promise<string> {
  await sql`insert into purpose_keys (purpose, ciphertext) values (${purpose}, ${ciphertext}) on conflict (purpose) do nothing`;
  return (await getPurposeKey(sql, purpose))!;
}

export async function allPurposeKeys(sql: Sql): Promise<PurposeKeyRow[]> {
  return sql<PurposeKeyRow[]>`select purpose, ciphertext from purpose_keys order by purpose`;
}

/** Compare-and-set, like replaceSecret: false when someone changed the row since it was read. */
export async function replacePurposeKey(sql: Sql, row: PurposeKeyRow, next: string): Promise<boolean> {
  const r = await sql`update purpose_keys set ciphertext = ${next}, updated_at = now()
                      where purpose = ${row.purpose} and ciphertext = ${row.ciphertext}`;
  return r.count === 1;
}
