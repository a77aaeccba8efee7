import type postgres from 'postgres';
import { recordAudit } from './audit.ts';
import { transaction } from './transaction.ts';

// Consent decisions (API.md "Consent (GDPR)"), append-only: a decision adds a row, the newest row
// of an (owner, purpose) is the one in force. What a withdrawal does to running connections is the
// connection service's (stopAll); what it does to stored texts is here and in the trigger of
// migrations/006_consent.sql, which blanks a text when its message ends while retention is withdrawn.

type Sql = postgres.Sql | postgres.TransactionSql;

export const purposes = ['processing', 'message-retention'] as const;
export type Purpose = typeof purposes[number];

export interface ConsentRow { id: string; owner: string; purpose: Purpose; version: string; granted: boolean; at: Date }
export interface Consent { purpose: Purpose; version: string; granted: boolean; at: string }

export const toConsent = (r: ConsentRow): Consent => ({ purpose: r.purpose, version: r.version, granted: r.granted, at: r.at.toISOString() });

/** The decision in force per purpose; a purpose never decided has no entry. */
export async function currentConsents(sql: Sql, owner: string): Promise<ConsentRow[]> {
  return sql<ConsentRow[]>`
    select distinct on (purpose) id::text, owner, purpose, version, granted, at from consents
    where owner = ${owner}
    order by purpose, consents.id desc -- the bigint column, not the text alias`;
}

/** The decision in force for one purpose, or undefined when the owner never decided. */
export async function currentConsent(sql: Sql, owner: string, purpose: Purpose): Promise<ConsentRow | undefined> {
  const [r] = await sql<ConsentRow[]>`
    select id::text, owner, purpose, version, granted, at from consents
    where owner = ${owner} and purpose = ${purpose}
    order by consents.id desc limit 1`;
  return r;
}

export interface Decision { owner: string; purpose: Purpose; version: string; granted: boolean }

/**
 * Records a decision with its audit entry in one transaction. Withdrawing `message-retention` also
 * blanks the texts of the owner's messages that have ended (sent or failed); the ones still to be
 * sent keep theirs until they end (the trigger). Returns the row and how many texts were blanked.
 */
export async function recordConsent(sql: postgres.Sql, d: Decision): Promise<{ consent: ConsentRow; blanked: number }> {
  return transaction(sql, async (tx) => {
    const [consent] = await tx<ConsentRow[]>`
      insert into consents (owner, purpose, version, granted) values (${d.owner}, ${d.purpose}, ${d.version}, ${d.granted})
      returning id::text, owner, purpose, version, granted, at`;
    let blanked = 0;
    if (d.purpose === 'message-retention' && !d.granted) {
      const r = await tx`update messages set text = '', updated_at = now()
                         where owner = ${d.owner} and status in ('sent', 'failed') and text <> ''`;
      blanked = r.count;
    }
    await recordAudit(tx, {
      owner: d.owner, actor: d.owner, action: d.granted ? 'consent.granted' : 'consent.withdrawn', target: d.purpose,
      details: { version: d.version, ...(d.purpose === 'message-retention' && !d.granted && { textsBlanked: blanked }) },
    });
    return { consent: consent!, blanked };
  });
}

/** The owner's decisions, oldest first, a page at a time (the export's `consents` section). */
export async function consentHistory(sql: Sql, owner: string, o: { limit: number; after?: string }): Promise<ConsentRow[]> {
  return sql<ConsentRow[]>`
    select id::text, owner, purpose, version, granted, at from consents
    where owner = ${owner} ${o.after ? sql`and id > ${o.after}::bigint` : sql``}
    order by consents.id limit ${o.limit}`;
}
