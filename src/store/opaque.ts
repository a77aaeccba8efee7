import type postgres from 'postgres';

type Sql = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

/**
 * A parameter the planner cannot see into: `(select $n::type)`. Its estimate, and so the plan, is the
 * same whatever the value, and Postgres keeps one generic plan per connection after five runs. As a
 * plain `$n::uuid[]` (or an owner against the statistics) batches of varying size and owners of other
 * backlogs were re-planned on every run: at 10,000/min 250–600 µs a statement with its events
 * (pg_stat_statements; docs/performance.md, "Statements planned once"). In `= any(…)` add a cast after
 * it, `any(${opaque(…)}::uuid[])`, or Postgres reads the sub-select as ANY (subquery).
 */
export function opaque(sql: Sql, value: postgres.ParameterOrFragment<never> | string, type: 'uuid[]' | 'int[]' | 'bigint[]' | 'text[]' | 'text') {
  return sql`(select ${value}::${sql.unsafe(type)})`;
}
