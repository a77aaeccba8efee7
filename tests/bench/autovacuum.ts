// Autovacuum's work for a server that runs with `autovacuum = off` (this machine's does): a fresh
// database is then never analyzed, and the planner reads all of `messages` for every lookup by id.
// Every `everyMs` each table is vacuumed or analyzed when autovacuum would do it, by the server's own
// thresholds (current_setting: autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor ·
// reltuples dead rows, the insert and analyze pairs likewise; PostgreSQL docs, "The Autovacuum
// Daemon"). Only the naptime is shorter than the default 60 s, so the fresh tables get their first
// statistics within seconds, as tables of a running service already have them.
import type postgres from 'postgres';

export interface AutovacuumStandIn {
  vacuums: number;
  analyzes: number;
  ms: number;
  stop(): Promise<void>;
}

interface TableStats { relname: string; reltuples: number; n_dead_tup: number; n_ins_since_vacuum: number; n_mod_since_analyze: number }
interface Settings { vt: number; vs: number; it: number; is: number; at: number; as: number }

export function autovacuumStandIn(sql: postgres.Sql, tables: string[], everyMs: number): AutovacuumStandIn {
  const s: AutovacuumStandIn = { vacuums: 0, analyzes: 0, ms: 0, stop: async () => { clearInterval(timer); await round; } };
  let settings: Settings | undefined;
  let round: Promise<void> = Promise.resolve();
  let busy = false;
  const tick = async () => {
    settings ??= (await sql<Settings[]>`
      select current_setting('autovacuum_vacuum_threshold')::float8 as vt, current_setting('autovacuum_vacuum_scale_factor')::float8 as vs,
        current_setting('autovacuum_vacuum_insert_threshold')::float8 as it, current_setting('autovacuum_vacuum_insert_scale_factor')::float8 as is,
        current_setting('autovacuum_analyze_threshold')::float8 as at, current_setting('autovacuum_analyze_scale_factor')::float8 as as`)[0]!;
    const rows = await sql<TableStats[]>`
      select s.relname, greatest(c.reltuples, 0)::float8 as reltuples, s.n_dead_tup::float8 as n_dead_tup,
        s.n_ins_since_vacuum::float8 as n_ins_since_vacuum, s.n_mod_since_analyze::float8 as n_mod_since_analyze
      from pg_stat_user_tables s join pg_class c on c.oid = s.relid
      where s.relname = any(${sql.array(tables)})`;
    for (const t of rows) {
      const vacuum = t.n_dead_tup > settings.vt + settings.vs * t.reltuples || (settings.it >= 0 && t.n_ins_since_vacuum > settings.it + settings.is * t.reltuples);
      const analyze = t.n_mod_since_analyze > settings.at + settings.as * t.reltuples;
      if (!vacuum && !analyze) continue;
      const t0 = performance.now();
      // Table names come from the caller's literal list, not from input.
      await sql.unsafe(`${vacuum ? 'vacuum (analyze)' : 'analyze'} ${t.relname}`);
      s.ms += performance.now() - t0;
      if (vacuum) s.vacuums++;
      else s.analyzes++;
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    round = tick().catch(() => undefined).finally(() => { busy = false; });
  }, everyMs);
  return s;
}
