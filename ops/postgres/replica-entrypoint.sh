#!/usr/bin/env bash
# The compose streaming replica: on first start, clone the primary with pg_basebackup (-R writes
# primary_conninfo and standby.signal, -S uses the slot made by primary-init.sh), then run as a hot
# standby. Promote it with `docker compose exec postgres-replica pg_ctl promote` (see
# docs/operations.md#postgres-replica); npm run drill:replica rehearses the whole failover here.
set -euo pipefail
: "${PGDATA:?}" "${PRIMARY_HOST:?}" "${POSTGRES_REPLICATION_PASSWORD:?}"
export PGPASSWORD=$POSTGRES_REPLICATION_PASSWORD
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h "$PRIMARY_HOST" -p 5432 -q; do sleep 1; done
  pg_basebackup -h "$PRIMARY_HOST" -p 5432 -U replicator -D "$PGDATA" -X stream -S replica1 -R -c fast
  chmod 0700 "$PGDATA"
fi
unset PGPASSWORD
exec postgres -c hot_standby=on -c hot_standby_feedback=on
