import type postgres from 'postgres';
import { checkWebhookRoom } from './quotas.ts';
import { transaction } from './transaction.ts';

// Owner-scoped queries for webhook endpoints and their deliveries (migrations/009_webhooks.sql).
// Every query that serves a caller names the owner, so another caller's id reads as absent (404).
// Secrets arrive here as keyring ciphertexts only; src/webhooks/ encrypts and decrypts them.

type Sql = postgres.Sql | postgres.TransactionSql;

export interface EndpointRow {
  id: string; owner: string; url: string; description: string | null; events: string[]; connection_ids: string[] | null;
  enabled: boolean; disabled_reason: string | null; secret: string; previous_secret: string | null;
  previous_expires_at: Date | null; failing_since: Date | null; created_at: Date; updated_at: Date;
}

export interface Attempt { at: string; httpStatus?: number; error?: string; durationMs: number }

export interface DeliveryRow {
  id: string; endpoint_id: string; owner: string; event_id: string; event_type: string; body: string;
  status: 'pending' | 'succeeded' | 'failed'; attempt_count: number; attempts: Attempt[]; next_attempt_at: Date | null;
  lease_owner: string | null; lease_until: Date | null; last_status: number | null; last_error: string | null;
  response_snippet: string | null; created_at: Date; updated_at: Date;
}

/** A product may keep this many endpoints; one more answers QUOTA_EXCEEDED. */
export const maxEndpointsPerOwner = 20;
/** Attempts kept on a delivery row: 8 automatic ones plus a dozen manual retries. */
const keptAttempts = 20;

export interface NewEndpoint {
  id: string; owner: string; url: string; description?: string; events: string[]; connectionIds?: string[]; secret: string;
}

/** Inserts unless the owner has maxEndpointsPerOwner already; run inside a transaction (the owner lock covers the insert). */
export async function insertEndpoint(sql: Sql, e: NewEndpoint, limit = maxEndpointsPerOwner): Promise<EndpointRow> {
  await checkWebhookRoom(sql, e.owner, limit);
  const [r] = await sql<EndpointRow[]>`
    insert into webhook_endpoints (id, owner, url, description, events, connection_ids, secret)
    values (${e.id}, ${e.owner}, ${e.url}, ${e.description ?? null}, ${e.events}, ${e.connectionIds ?? null}, ${e.secret})
    returning *`;
  return r!;
}

export async function getEndpoint(sql: Sql, owner: string, id: string): Promise<EndpointRow | undefined> {
  const [r] = await sql<EndpointRow[]>`select * from webhook_endpoints where id = ${id} and owner = ${owner}`;
  return r;
}

export async function listEndpoints(sql: Sql, owner: string): Promise<EndpointRow[]> {
  // At most 20 rows per owner: no paging.
  return sql<EndpointRow[]>`select * from webhook_endpoints where owner = ${owner} order by created_at, id`;
}

export interface EndpointPatch { url?: string; description?: string | null; events?: string[]; connectionIds?: string[] | null; enabled?: boolean }

export async function updateEndpoint(sql: Sql, owner: string, id: string, p: EndpointPatch): Promise<EndpointRow | undefined> {
  const [r] = await sql<EndpointRow[]>`
    update webhook_endpoints set
      url = coalesce(${p.url ?? null}, url),
      description = ${p.description === undefined ? sql`description` : p.description},
      events = coalesce(${p.events ?? null}::text[], events),
      connection_ids = ${p.connectionIds === undefined ? sql`connection_ids` : sql`${p.connectionIds}::uuid[]`},
      enabled = coalesce(${p.enabled ?? null}::boolean, enabled),
      -- Enabling again starts afresh: no reason, and the 5-day failure clock starts over.
      disabled_reason = case when ${p.enabled ?? null}::boolean is true then null
                             when ${p.enabled ?? null}::boolean is false and enabled then 'disabled by the owner'
                             else disabled_reason end,
      failing_since = case when ${p.enabled ?? null}::boolean is true then null else failing_since end,
      updated_at = now()
    where id = ${id} and owner = ${owner}
    returning *`;
  return r;
}

export async function deleteEndpoint(sql: Sql, owner: string, id: string): Promise<boolean> {
  const r = await sql`delete from webhook_endpoints where id = ${id} and owner = ${owner}`;
  return r.count === 1;
}

/** The current secret becomes the previous one (until `previousUntil`); an older previous one is dropped. */
export async function rotateEndpointSecret(sql: Sql, owner: string, id: string, secret: string, previousSecret: string, previousUntil: Date): Promise<EndpointRow | undefined> {
  const [r] = await sql<EndpointRow[]>`
    update webhook_endpoints set secret = ${secret}, previous_secret = ${previousSecret}, previous_expires_at = ${previousUntil}, updated_at = now()
    where id = ${id} and owner = ${owner}
    returning *`;
  return r;
}

/** Disables at once (410 Gone, or 5 days of failures); false when it was disabled already (someone else did it). */
export async function disableEndpoint(sql: Sql, id: string, reason: string): Promise<EndpointRow | undefined> {
  const [r] = await sql<EndpointRow[]>`
    update webhook_endpoints set enabled = false, disabled_reason = ${reason}, updated_at = now()
    where id = ${id} and enabled
    returning *`;
  return r;
}

/** After an attempt: a success clears the failure clock; a failure starts it unless it runs already. Returns failing_since. */
export async function markEndpointOutcome(sql: Sql, id: string, ok: boolean, at: Date): Promise<Date | null> {
  const [r] = await sql<{ failing_since: Date | null }[]>`
    update webhook_endpoints set failing_since = ${ok ? null : sql`coalesce(failing_since, ${at})`}
    where id = ${id}
    returning failing_since`;
  return r?.failing_since ?? null;
}

// ---------------------------------------------------------------------------------------------
// Deliveries

export interface WebhookEventInput {
  /** The event's id: the `webhook-id` of every attempt. */
  id: string;
  customerId: string;
  type: string;
  occurredAt: Date | string;
  connectionId?: string;
  data: unknown;
}

/**
 * One delivery row per matching endpoint of the owner: enabled, its `events` naming the type or '*',
 * its connection filter (if any) naming the event's connection. `onlyEndpoint` targets one endpoint
 * whatever its filters (the `webhook.test` event). Idempotent: an event fed twice adds nothing.
 * Returns the ids of the rows inserted now.
 */
export async function insertDeliveries(sql: Sql, e: WebhookEventInput, body: string, onlyEndpoint?: string): Promise<{ id: string; endpointId: string }[]> {
  const rows = await sql<{ id: string; endpoint_id: string }[]>`
    insert into webhook_deliveries (id, endpoint_id, owner, event_id, event_type, body, next_attempt_at)
    select gen_random_uuid(), w.id, w.owner, ${e.id}, ${e.type}, ${body}, now()
    from webhook_endpoints w
    where w.owner = ${e.customerId} and w.enabled
      ${onlyEndpoint ? sql`and w.id = ${onlyEndpoint}` : sql`
        and (${e.type} = any (w.events) or '*' = any (w.events))
        and (w.connection_ids is null or ${e.connectionId ?? null}::uuid = any (w.connection_ids))`}
    on conflict (endpoint_id, event_id) do nothing
    returning id, endpoint_id`;
  return rows.map((r) => ({ id: r.id, endpointId: r.endpoint_id }));
}

/**
 * insertDeliveries for a batch of stored events in one statement (the events feeder): each event joined
 * with its owner's enabled endpoints whose filters match; idempotent on (endpoint, event id).
 */
export async function insertDeliveriesForEvents(
  sql: Sql, events: readonly { id: string; customerId: string; type: string; connectionId?: string; body: string }[],
): Promise<number> {
  if (events.length === 0) return 0;
  const rows = events.map((e) => ({ id: e.id, customer_id: e.customerId, type: e.type, connection_id: e.connectionId ?? null, body: e.body }));
  const inserted = await sql`
    insert into webhook_deliveries (id, endpoint_id, owner, event_id, event_type, body, next_attempt_at)
    select gen_random_uuid(), w.id, w.owner, e.id, e.type, e.body, now()
    from jsonb_to_recordset(${sql.json(rows)}) as e(id text, customer_id text, type text, connection_id uuid, body text)
    join webhook_endpoints w on w.owner = e.customer_id and w.enabled
      and (e.type = any (w.events) or '*' = any (w.events))
      and (w.connection_ids is null or e.connection_id = any (w.connection_ids))
    on conflict (endpoint_id, event_id) do nothing`;
  return inserted.count;
}

export async function getDelivery(sql: Sql, owner: string, endpointId: string, id: string): Promise<DeliveryRow | undefined> {
  const [r] = await sql<DeliveryRow[]>`select * from webhook_deliveries where id = ${id} and endpoint_id = ${endpointId} and owner = ${owner}`;
  return r;
}

export interface DeliveryCursor { createdAt: string; id: string }

/** Newest first; `created_at` travels as Postgres text (microseconds) for exact keyset paging. */
export async function listDeliveries(
  sql: Sql, owner: string, endpointId: string, f: { status?: string; before?: DeliveryCursor; limit: number },
): Promise<(DeliveryRow & { created_text: string })[]> {
  return sql<(DeliveryRow & { created_text: string })[]>`
    select *, created_at::text as created_text from webhook_deliveries
    where endpoint_id = ${endpointId} and owner = ${owner}
      ${f.status ? sql`and status = ${f.status}` : sql``}
      ${f.before ? sql`and (created_at, id) < (${f.before.createdAt}::timestamptz, ${f.before.id}::uuid)` : sql``}
    order by created_at desc, id desc
    limit ${f.limit}`;
}

/** Manual retry: due now, whatever its state; a row in flight keeps its lease (its outcome lands, then this one runs). */
export async function retryDelivery(sql: Sql, owner: string, endpointId: string, id: string): Promise<boolean> {
  const r = await sql`
    update webhook_deliveries set status = 'pending', next_attempt_at = now(), updated_at = now()
    where id = ${id} and endpoint_id = ${endpointId} and owner = ${owner}`;
  return r.count === 1;
}

/**
 * Claims up to `limit` due deliveries of enabled endpoints for `leaseOwner` until `leaseUntil`, at
 * most `perEndpoint` leased per endpoint (counting rows leased by anyone), earliest due first; an
 * endpoint with live leases of another claimer is skipped (one dispatcher sends to an endpoint at a time,
 * so its in-memory cap on requests in flight is the endpoint's cap).
 * Each endpoint is probed for its own earliest rows, so one endpoint's deep backlog never hides
 * another's. Claims are serialised by a transaction-scoped advisory lock (a claim takes a few ms),
 * which makes the per-endpoint cap exact across dispatchers; FOR UPDATE SKIP LOCKED keeps a row
 * being recorded by its holder out of the way. Time comparisons use `now` (the dispatcher's clock).
 */
export async function claimDeliveries(
  sql: postgres.Sql, o: { leaseOwner: string; now: Date; leaseUntil: Date; limit: number; perEndpoint: number },
): Promise<ClaimedRow[]> {
  const rows = await transaction(sql, async (tx) => {
    await tx`select pg_advisory_xact_lock(${claimLock}::int, 0)`;
    return tx<(DeliveryRow & { endpoint: Record<string, unknown> })[]>`
      with candidates as (
        select c.id, c.next_attempt_at from webhook_endpoints w
        cross join lateral (
          select count(*)::int as n, count(*) filter (where l.lease_owner <> ${o.leaseOwner})::int as others
          from webhook_deliveries l
          where l.endpoint_id = w.id and l.lease_until is not null and l.lease_until >= ${o.now} and l.status = 'pending'
        ) busy
        cross join lateral (
          select d.id, d.next_attempt_at from webhook_deliveries d
          where d.endpoint_id = w.id and d.status = 'pending' and d.next_attempt_at <= ${o.now}
            and (d.lease_until is null or d.lease_until < ${o.now})
          order by d.next_attempt_at
          limit greatest(${o.perEndpoint}::int - busy.n, 0)
        ) c
        -- An endpoint's live leases belong to one claimer at a time: the dispatcher that holds some
        -- may claim more (its prefetch), others leave the endpoint alone, so its in-flight cap holds.
        where w.enabled and busy.others = 0
        order by c.next_attempt_at
        limit ${o.limit}
      ), picked as (
        select d.id from webhook_deliveries d where d.id in (select id from candidates)
        for update skip locked
      )
      update webhook_deliveries d set lease_owner = ${o.leaseOwner}, lease_until = ${o.leaseUntil}
      from picked, webhook_endpoints w
      where d.id = picked.id and w.id = d.endpoint_id
      returning d.*, row_to_json(w.*) as endpoint`;
  });
  // row_to_json gives timestamps as text: back to Dates, as the other queries give them.
  const date = (v: unknown) => (v == null ? null : new Date(v as string));
  return rows.map((r) => ({
    ...r,
    endpoint: {
      ...(r.endpoint as unknown as EndpointRow),
      previous_expires_at: date(r.endpoint.previous_expires_at), failing_since: date(r.endpoint.failing_since),
      created_at: date(r.endpoint.created_at)!, updated_at: date(r.endpoint.updated_at)!,
    },
  }));
}

/** A claimed delivery with its endpoint as it was at the claim. */
export type ClaimedRow = DeliveryRow & { endpoint: EndpointRow };

// First key of the two-int advisory lock space for delivery claims: 'WHCL'.
const claimLock = 0x5748434c;

export interface AttemptOutcome {
  attempt: Attempt;
  status: 'pending' | 'succeeded' | 'failed';
  nextAttemptAt: Date | null;
  responseSnippet?: string;
}

/**
 * Records attempts and releases their leases in one statement (the dispatcher records each loop
 * turn's outcomes together), only where this claimer still holds the lease (a stale one changes
 * nothing). Returns the ids recorded.
 */
export async function recordAttempts(sql: Sql, leaseOwner: string, items: readonly ({ id: string } & AttemptOutcome)[]): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  const rows = items.map((o) => ({
    id: o.id, status: o.status, attempt: o.attempt, next_attempt_at: o.nextAttemptAt?.toISOString() ?? null,
    last_status: o.attempt.httpStatus ?? null, last_error: o.attempt.error ?? null, snippet: o.responseSnippet ?? null,
  }));
  const r = await sql<{ id: string }[]>`
    update webhook_deliveries d set
      status = v.status,
      attempt_count = d.attempt_count + 1,
      attempts = (select coalesce(jsonb_agg(a order by n), '[]'::jsonb) from (
        select a, n from jsonb_array_elements(d.attempts || jsonb_build_array(v.attempt)) with ordinality as t (a, n)
        order by n desc limit ${keptAttempts}) kept),
      next_attempt_at = v.next_attempt_at,
      last_status = v.last_status,
      last_error = v.last_error,
      response_snippet = v.snippet,
      lease_owner = null, lease_until = null, updated_at = now()
    from jsonb_to_recordset(${sql.json(rows as never)}) as v (
      id uuid, status text, attempt jsonb, next_attempt_at timestamptz, last_status int, last_error text, snippet text)
    where d.id = v.id and d.lease_owner = ${leaseOwner}
    returning d.id`;
  return new Set(r.map((x) => x.id));
}

/** Gives claimed rows back untouched (not sent: graceful stop, lease too short to send, endpoint disabled). */
export async function releaseDeliveries(sql: Sql, ids: readonly string[], leaseOwner: string): Promise<void> {
  if (ids.length === 0) return;
  await sql`update webhook_deliveries set lease_owner = null, lease_until = null where id = any (${ids as string[]}::uuid[]) and lease_owner = ${leaseOwner}`;
}

/** For metrics: the backlog, how late the most overdue due delivery is, endpoints failing over an hour, the 20 oldest backlogs. */
export async function webhookStats(sql: Sql, now: Date): Promise<{
  pending: number; dueLagS: number; failing: number; oldest: { endpointId: string; ageS: number }[];
}> {
  const [t] = await sql<{ pending: number; due_lag: number; failing: number }[]>`
    select
      (select count(*)::int from webhook_deliveries where status = 'pending') as pending,
      (select coalesce(extract(epoch from (${now}::timestamptz - min(d.next_attempt_at))), 0)::float8
         from webhook_deliveries d join webhook_endpoints w on w.id = d.endpoint_id and w.enabled
         where d.status = 'pending' and d.next_attempt_at <= ${now}) as due_lag,
      (select count(*)::int from webhook_endpoints where enabled and failing_since < ${now}::timestamptz - interval '1 hour') as failing`;
  const oldest = await sql<{ endpoint_id: string; age_s: number }[]>`
    select endpoint_id, extract(epoch from (${now}::timestamptz - min(created_at)))::float8 as age_s
    from webhook_deliveries where status = 'pending' group by endpoint_id order by min(created_at) limit 20`;
  return { pending: t!.pending, dueLagS: Math.max(0, t!.due_lag), failing: t!.failing, oldest: oldest.map((o) => ({ endpointId: o.endpoint_id, ageS: o.age_s })) };
}

// ---------------------------------------------------------------------------------------------
// Rewrap (src/crypto/rewrap.ts): the secrets move to the newest key version like connection secrets.

export interface EndpointSecretRow { id: string; secret: string; previous_secret: string | null }

export async function endpointSecretsPage(sql: Sql, after: string | null, limit: number): Promise<EndpointSecretRow[]> {
  return sql<EndpointSecretRow[]>`
    select id, secret, previous_secret from webhook_endpoints
    ${after ? sql`where id > ${after}` : sql``}
    order by id limit ${limit}`;
}

/** Compare-and-set on one column: false when the row changed since it was read (a rotation). */
export async function replaceEndpointSecret(sql: Sql, id: string, column: 'secret' | 'previous_secret', was: string, next: string): Promise<boolean> {
  const r = column === 'secret'
    ? await sql`update webhook_endpoints set secret = ${next} where id = ${id} and secret = ${was}`
    : await sql`update webhook_endpoints set previous_secret = ${next} where id = ${id} and previous_secret = ${was}`;
  return r.count === 1;
}

/** Retention: deletes up to `batch` finished deliveries (succeeded or failed) last touched before `cutoff`. */
export async function purgeFinishedDeliveries(sql: Sql, cutoff: Date, batch: number): Promise<number> {
  const r = await sql`
    delete from webhook_deliveries where id in (
      select id from webhook_deliveries where status <> 'pending' and updated_at < ${cutoff} limit ${batch})`;
  return r.count;
}
