#!/usr/bin/env bash
# Runs once, when the compose primary's data directory is created (docker-entrypoint-initdb.d):
# a replication role for the streaming replica and its pg_hba line, and the replica's physical slot,
# so the primary keeps the WAL the replica has not received yet (no gap after a replica outage).
# The password comes from the environment (POSTGRES_REPLICATION_PASSWORD), never from this file.
set -euo pipefail
: "${POSTGRES_REPLICATION_PASSWORD:?set POSTGRES_REPLICATION_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v pw="$POSTGRES_REPLICATION_PASSWORD" <<'SQL'
create role replicator with replication login password :'pw';
select pg_create_physical_replication_slot('replica1');
-- postgres_exporter reads the statistics views as pg_monitor, nothing else.
create role exporter with login password :'pw' in role pg_monitor;
SQL
# scram-sha-256 over the compose network only; the replica connects as `replicator`.
echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
