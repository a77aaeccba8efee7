import type postgres from 'postgres';

// The local keyring's key versions (src/crypto/local-keyring.ts; migration 013): wrapped data keys,
// shared by every node on the database. Rows are only added, never changed.

type Sql = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

export interface KeyVersionRow {
  version: number;
  created_at: Date;
  wrapped_key: string;
}

// Arbitrary, fixed, distinct from the migration runner's (7_358_001): every node of this service takes
// the same key while it creates, imports or rotates versions, so two nodes never number one twice.
const lockKey = 7_358_015;

export async function keyVersions(sql: Sql): Promise<KeyVersionRow[]> {
  return sql<KeyVersionRow[]>`select version, created_at, wrapped_key from keyring_versions order by version`;
}

/** Held until the surrounding transaction ends (commit or rollback). */
export async function lockKeyVersions(tx: Sql): Promise<void> {
  await tx`select pg_advisory_xact_lock(${lockKey})`;
}

/** Adds a version; call under lockKeyVersions, after reading the newest. */
export async function insertKeyVersion(
  tx: Sql,
  row: { version: number; createdAt: Date; wrappedKey: string; source: 'created' | 'imported' },
): Promise<void> {
  await tx`insert into keyring_versions (version, created_at, wrapped_key, source)
           values (${row.version}, ${row.createdAt}, ${row.wrappedKey}, ${row.source})`;
}

/**
 * True when some row holds a local keyring ciphertext: the keyring that made it exists (in a keyring
 * file not imported yet), so a fresh version 1 must not be created beside it.
 */
export async function localCiphertextsExist(sql: Sql): Promise<boolean> {
  const [r] = await sql<{ found: boolean }[]>`
    select exists (select 1 from connection_secrets where ciphertext like 'local:%')
        or exists (select 1 from purpose_keys where ciphertext like 'local:%')
        or exists (select 1 from webhook_endpoints where secret like 'local:%' or previous_secret like 'local:%') as found`;
  return r!.found;
}
