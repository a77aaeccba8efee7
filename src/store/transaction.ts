// Transactions on a reserved connection, instead of postgres.js's sql.begin. In postgres.js 3.4.9
// (the newest release) sql.begin reserves its connection in a hook that runs only when BEGIN did not
// fill the pipeline (100 queries) and the socket took the bytes without backpressure
// (porsager/postgres#823, #1189). Otherwise BEGIN runs on a pooled connection: the driver throws
// UNSAFE_TRANSACTION, and the open transaction goes back to the pool where unrelated queries run
// inside it. Measured: 500-message batch accepts under a full pipeline got HTTP 500s. Here the
// connection is ours (sql.reserve()) before BEGIN is written, so no other query can land on it.
import type postgres from 'postgres';

/** The handle a transaction body gets: every query on it runs inside the transaction. */
export type Tx = postgres.ReservedSql;

/** The isolation modes the store uses; default read committed, read write. */
export type TransactionMode = 'repeatable read' | 'repeatable read read only';

/**
 * Runs fn between BEGIN and COMMIT on one reserved connection; ROLLBACK and rethrow when fn throws
 * (same semantics as sql.begin). Resolves with fn's result after COMMIT.
 * fn should await only queries on tx: postgres.js 3.4.9 (sql.begin alike) crashes the process with a
 * null-socket TypeError when a query goes to a connection that closed while fn awaited something else.
 */
export async function transaction<T>(sql: postgres.Sql, fn: (tx: Tx) => Promise<T>, mode?: TransactionMode): Promise<T> {
  return run(sql, async (tx) => ({ result: await fn(tx) }), mode);
}

/**
 * What a body of transactionEndingWith gives back: its result and its last statement, not yet awaited;
 * or only the last statement, with resultOf making the result from its rows.
 */
export type Ending<T> =
  | { result: T; last?: postgres.PendingQuery<postgres.Row[]> }
  | { last: postgres.PendingQuery<postgres.Row[]>; resultOf: (rows: postgres.Row[]) => T };

/**
 * transaction(), where the body's last statement is written together with COMMIT (pipelined, one
 * round trip). A lock that statement takes (the events' pos lock, which every event writer waits
 * for) is then held while the server runs two steps, not for a round trip through this process:
 * under load, when this process's event loop is busy, that round trip took tens of milliseconds.
 * If the last statement fails, the server answers the COMMIT with a rollback and its error is thrown.
 */
export async function transactionEndingWith<T>(sql: postgres.Sql, fn: (tx: Tx) => Promise<Ending<T>>, mode?: TransactionMode): Promise<T> {
  return run(sql, fn, mode);
}

async function run<T>(sql: postgres.Sql, fn: (tx: Tx) => Promise<Ending<T>>, mode?: TransactionMode): Promise<T> {
  const tx = await sql.reserve();
  // A connection that died under us is already back in the pool's closed queue (reconnected on the
  // next query); releasing it again would put its null socket in the open queue.
  let broken = false;
  try {
    // BEGIN is not awaited: it goes out in the same write as the body's first statement (postgres.js
    // pipelines a connection's queries and joins the writes of one turn), one round trip and two
    // syscalls fewer per transaction — the accept of a one-message POST was 5 round trips, now 4. On a
    // fresh reserved connection BEGIN fails only with the connection, and then so does that statement.
    const began = begin(tx, mode).then(() => undefined, (err: unknown) => err ?? new Error('BEGIN failed'));
    let ending: Ending<T>;
    try {
      ending = await fn(tx);
      const beginError = await began;
      if (beginError) throw beginError;
    } catch (err) {
      await began;
      broken = isConnectionError(err);
      if (!broken) await tx`rollback`.catch((e: unknown) => { broken = isConnectionError(e); });
      throw err;
    }
    let lastRows: postgres.Row[] = [];
    try {
      if (ending.last) {
        const [last, commit] = await Promise.allSettled([ending.last, tx`commit`]);
        if (last.status === 'rejected') throw last.reason; // the COMMIT after it rolled back
        if (commit.status === 'rejected') throw commit.reason;
        lastRows = last.value;
      } else {
        await tx`commit`;
      }
    } catch (err) {
      broken = isConnectionError(err);
      throw err;
    }
    return 'resultOf' in ending ? ending.resultOf(lastRows) : ending.result;
  } catch (err) {
    broken ||= isConnectionError(err);
    throw err;
  } finally {
    if (!broken) tx.release();
  }
}

// Tagged templates only (no sql.unsafe): one literal per mode.
function begin(tx: Tx, mode: TransactionMode | undefined) {
  if (mode === 'repeatable read') return tx`begin isolation level repeatable read`;
  if (mode === 'repeatable read read only') return tx`begin isolation level repeatable read read only`;
  return tx`begin`;
}

// The driver's connection errors (CONNECTION_CLOSED, CONNECT_TIMEOUT, …) and socket errors
// (ECONNRESET, EPIPE) carry `errno`, and a FATAL server error ends the session; other server errors
// (PostgresError) and the body's own errors leave the connection usable. A ROLLBACK sent after a socket error can wait forever (the close
// that follows does not fail it), so none is sent then. Wrapped errors are followed through `cause`.
function isConnectionError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ('errno' in e) return true;
    // FATAL (e.g. 57P01 admin_shutdown): the server closes the connection right after.
    if ((e as { severity?: unknown }).severity === 'FATAL' || (e as { severity?: unknown }).severity === 'PANIC') return true;
  }
  return false;
}
