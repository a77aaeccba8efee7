#!/usr/bin/env bash
# Backup and point-in-time-restore drill (npm run drill:backup). Really does it, on a scratch
# PostgreSQL 15 cluster in a temp dir that never touches the server on 5432:
#   initdb --data-checksums, WAL archiving on -> rows -> pg_basebackup -X stream -> pg_verifybackup
#   -> more rows -> note the time -> accident (DELETE + DROP TABLE) -> restore the base backup with
#   restore_command + recovery_target_time -> the rows from before the accident are back
#   -> pg_dump -Fc / pg_restore round trip -> stop everything, remove the temp dir.
# With pgBackRest installed (Debian package pgbackrest) it does the same PITR a second time with the
# production config ops/backup/pgbackrest.conf (paths pointed into the temp dir): stanza-create,
# check, full backup, WAL archive-push, restore --type=time. DRILL_PGBACKREST=0 skips that part.
# Exits non-zero on any mismatch. Runs as root (postgres is started as the `postgres` OS user) or as
# postgres. ~10 s here (~4 s without the pgBackRest part).
# Env: PGBIN (default /usr/lib/postgresql/15/bin), DRILL_ROWS (default 1000), DRILL_PGBACKREST=0.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROWS=${DRILL_ROWS:-1000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pg-drill-XXXXXX")
PRIMARY=$WORK/primary
RESTORED=$WORK/restored
BASE=$WORK/base
WAL=$WORK/wal-archive
# Sockets only (listen_addresses=''), in $WORK: no TCP port can clash with another server.
PORT_PRIMARY=55432
PORT_RESTORED=55433
PORT_PGBR=55434
PGBR_RESTORED=$WORK/restored-pgbackrest
PGBR=0
if [ "${DRILL_PGBACKREST:-1}" = 1 ] && command -v pgbackrest >/dev/null; then PGBR=1; fi
started=()

if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$WORK"
  as_pg() { runuser -u postgres -- "$@"; }
elif [ "$(id -un)" = postgres ]; then
  as_pg() { "$@"; }
else
  echo "drill: run as root or as the postgres user" >&2
  exit 2
fi

cleanup() {
  local rc=$?
  for dir in "${started[@]}"; do
    as_pg "$PGBIN/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true
  done
  if [ "$rc" -ne 0 ]; then
    echo "drill: FAILED (exit $rc); server logs:" >&2
    tail -n 20 "$WORK"/*.log >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
# A signal (the test's timeout, Ctrl-C) exits through the EXIT trap too: no stray clusters.
trap 'exit 143' TERM INT

step() { printf '[drill %5.1fs] %s\n' "$(( $(date +%s%N) / 1000000 - T0 ))e-3" "$*"; }
T0=$(( $(date +%s%N) / 1000000 ))

sql() { # sql PORT DB "statement" -> unaligned, tuples only
  as_pg "$PGBIN/psql" -X -h "$WORK" -p "$1" -U postgres -d "$2" -v ON_ERROR_STOP=1 -Atq -c "$3"
}

fail() { echo "drill: MISMATCH: $*" >&2; exit 1; }

start_cluster() { # start_cluster DATADIR [VAR=value ...]: the server (and its archive/restore commands) get the VARs
  local dir=$1; shift
  as_pg env "$@" "$PGBIN/pg_ctl" -D "$dir" -l "$WORK/$(basename "$dir").log" -w -t 60 start >/dev/null
  started+=("$dir")
}

# --- 1. scratch primary with checksums and WAL archiving --------------------------------------
as_pg mkdir -p "$WAL"
archive_command="test -f $WAL/%f || cp %p $WAL/%f"
pgbr_env=()
if [ "$PGBR" = 1 ]; then
  # The production file as is; only its host paths are overridden, through PGBACKREST_* variables
  # (they beat the file, and unlike options pgBackRest ignores them for commands they do not
  # apply to). The repository passphrase comes from the environment, as in production.
  # archive-async off: no background pusher may outlive the drill.
  as_pg cp "$(dirname "$0")/pgbackrest.conf" "$WORK/pgbackrest.conf"
  pgbr_env=(
    PGBACKREST_CONFIG="$WORK/pgbackrest.conf" PGBACKREST_STANZA=integration
    PGBACKREST_REPO1_PATH="$WORK/pgbackrest-repo" PGBACKREST_REPO1_CIPHER_PASS="$(head -c 24 /dev/urandom | base64)"
    PGBACKREST_LOG_PATH="$WORK" PGBACKREST_LOCK_PATH="$WORK/pgbackrest-lock" PGBACKREST_SPOOL_PATH="$WORK/pgbackrest-spool"
    PGBACKREST_ARCHIVE_ASYNC=n PGBACKREST_LOG_LEVEL_CONSOLE=warn PGBACKREST_LOG_LEVEL_FILE=off
    PGBACKREST_PG1_PATH="$PRIMARY" PGBACKREST_PG1_PORT=$PORT_PRIMARY PGBACKREST_PG1_SOCKET_PATH="$WORK"
  )
  pgbr() { as_pg env "${pgbr_env[@]}" pgbackrest "$@"; }
  archive_command="($archive_command) \&\& pgbackrest archive-push %p"
fi
# --no-sync / fsync=off / pg_basebackup --no-sync: the drill proves the procedure (archive, base
# backup, verify, PITR, dump), not the durability of a temp dir; fsyncs made it 5-10x slower on a
# busy disk (initdb 0.5 s -> 6 s while other tests ran).
as_pg "$PGBIN/initdb" -D "$PRIMARY" --data-checksums --no-sync -U postgres -A trust >/dev/null
cat >>"$PRIMARY/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT_PRIMARY
wal_level = replica
archive_mode = on
archive_command = '$archive_command'
max_wal_senders = 4
fsync = off
EOF
start_cluster "$PRIMARY" "${pgbr_env[@]}"
step "primary up in $WORK (checksums: $(sql $PORT_PRIMARY postgres 'show data_checksums'))"

sql $PORT_PRIMARY postgres "create database drill" >/dev/null
sql $PORT_PRIMARY drill "create table drill_orders (id int primary key, note text not null, created_at timestamptz not null default clock_timestamp())"
sql $PORT_PRIMARY drill "insert into drill_orders (id, note) select g, 'order ' || g from generate_series(1, $ROWS) g"

# --- 2. base backup, verified ----------------------------------------------------------------
if [ "$PGBR" = 1 ]; then
  pgbr stanza-create
  pgbr check
  pgbr --type=full backup
  step "pgBackRest: stanza created, archiving checked, full backup $(pgbr info --output=json | grep -o '"label":"[^"]*"' | head -1)"
fi
as_pg "$PGBIN/pg_basebackup" -h "$WORK" -p $PORT_PRIMARY -U postgres -D "$BASE" -X stream -c fast --no-sync
as_pg "$PGBIN/pg_verifybackup" -q "$BASE"
step "base backup taken and verified ($(du -sh "$BASE" | cut -f1))"

# --- 3. writes after the backup, the restore point, the accident --------------------------------
# pgBackRest picks the backup set by its stop time in whole seconds: a target in the same second as
# the backup's end finds no set "before" it (seen in CI). Wait into the next second first.
sql $PORT_PRIMARY postgres "select pg_sleep(1.1)" >/dev/null
sql $PORT_PRIMARY drill "insert into drill_orders (id, note) select g, 'late order ' || g from generate_series($ROWS + 1, $ROWS + $ROWS / 2) g"
before=$(sql $PORT_PRIMARY drill "select count(*) from drill_orders")
checksum_before=$(sql $PORT_PRIMARY drill "select md5(string_agg(id || ':' || note, ',' order by id)) from drill_orders")
target=$(sql $PORT_PRIMARY drill "select clock_timestamp()")
step "rows before the accident: $before; restore target: $target"

sql $PORT_PRIMARY drill "delete from drill_orders where id % 3 = 0"
after_delete=$(sql $PORT_PRIMARY drill "select count(*) from drill_orders")
sql $PORT_PRIMARY drill "drop table drill_orders"
after_accident=$(sql $PORT_PRIMARY drill "select count(*) from pg_tables where tablename = 'drill_orders'")
[ "$after_accident" = 0 ] || fail "the accident did not drop the table"
# Close the WAL segment holding the accident so it reaches the archive, and wait until it has.
segment=$(sql $PORT_PRIMARY postgres "select pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 100); do
  [ -f "$WAL/$segment" ] && break
  sql $PORT_PRIMARY postgres "select pg_sleep(0.1)" >/dev/null
done
[ -f "$WAL/$segment" ] || fail "WAL segment $segment was not archived within 10 s"
as_pg "$PGBIN/pg_ctl" -D "$PRIMARY" -m fast stop >/dev/null
started=()
step "accident: table dropped, primary stopped; archived WAL segments: $(ls "$WAL" | wc -l)"

# --- 4. point-in-time restore from the base backup and the archive -------------------------------
as_pg cp -a "$BASE" "$RESTORED"
restore_command="cp $WAL/%f %p"
# DRILL_BREAK_RESTORE=1 makes the archive unreadable: the drill must then fail, which
# tests/ops/backup-drill.test.ts checks so a drill that always passes cannot go unnoticed.
[ "${DRILL_BREAK_RESTORE:-0}" = 1 ] && restore_command="false"
cat >>"$RESTORED/postgresql.conf" <<EOF
port = $PORT_RESTORED
archive_mode = off
restore_command = '$restore_command'
recovery_target_time = '$target'
recovery_target_action = 'promote'
EOF
as_pg touch "$RESTORED/recovery.signal"
start_cluster "$RESTORED"
for _ in $(seq 1 120); do
  [ "$(sql $PORT_RESTORED postgres 'select pg_is_in_recovery()')" = f ] && break
  sql $PORT_RESTORED postgres "select pg_sleep(0.25)" >/dev/null
done
[ "$(sql $PORT_RESTORED postgres 'select pg_is_in_recovery()')" = f ] || fail "restored cluster did not finish recovery in 30 s"
after_restore=$(sql $PORT_RESTORED drill "select count(*) from drill_orders")
checksum_restore=$(sql $PORT_RESTORED drill "select md5(string_agg(id || ':' || note, ',' order by id)) from drill_orders")
step "restored to $target and promoted"
[ "$after_restore" = "$before" ] || fail "restored $after_restore rows, expected $before"
[ "$checksum_restore" = "$checksum_before" ] || fail "restored rows differ from the rows before the accident"

# --- 4b. the same point-in-time restore with pgBackRest and the production config ----------------
after_pgbr="skipped (pgbackrest not installed)"
if [ "$PGBR" = 1 ]; then
  as_pg mkdir -m 0700 "$PGBR_RESTORED"
  pgbr_env+=(PGBACKREST_PG1_PATH="$PGBR_RESTORED" PGBACKREST_PG1_PORT=$PORT_PGBR)
  pgbr --type=time --target="$target" --target-action=promote restore
  printf "port = %s\narchive_mode = off\n" "$PORT_PGBR" >>"$PGBR_RESTORED/postgresql.conf"
  # The restore_command pgbackrest wrote (postgresql.auto.conf) reads the repository with the same variables.
  start_cluster "$PGBR_RESTORED" "${pgbr_env[@]}"
  for _ in $(seq 1 120); do
    [ "$(sql $PORT_PGBR postgres 'select pg_is_in_recovery()')" = f ] && break
    sql $PORT_PGBR postgres "select pg_sleep(0.25)" >/dev/null
  done
  after_pgbr=$(sql $PORT_PGBR drill "select count(*) from drill_orders")
  checksum_pgbr=$(sql $PORT_PGBR drill "select md5(string_agg(id || ':' || note, ',' order by id)) from drill_orders")
  [ "$after_pgbr" = "$before" ] || fail "pgBackRest restored $after_pgbr rows, expected $before"
  [ "$checksum_pgbr" = "$checksum_before" ] || fail "pgBackRest restored rows differ"
  step "pgBackRest restore --type=time to $target: $after_pgbr rows"
fi

# --- 5. logical round trip: pg_dump -Fc -> pg_restore into a new database ------------------------
as_pg "$PGBIN/pg_dump" -h "$WORK" -p $PORT_RESTORED -U postgres -Fc -f "$WORK/drill.dump" drill
sql $PORT_RESTORED postgres "create database drill_copy" >/dev/null
as_pg "$PGBIN/pg_restore" -h "$WORK" -p $PORT_RESTORED -U postgres -d drill_copy --exit-on-error "$WORK/drill.dump"
after_dump=$(sql $PORT_RESTORED drill_copy "select count(*) from drill_orders")
checksum_dump=$(sql $PORT_RESTORED drill_copy "select md5(string_agg(id || ':' || note, ',' order by id)) from drill_orders")
step "pg_dump -Fc ($(du -h "$WORK/drill.dump" | cut -f1)) restored into drill_copy"
[ "$after_dump" = "$before" ] || fail "pg_restore gave $after_dump rows, expected $before"
[ "$checksum_dump" = "$checksum_before" ] || fail "pg_restore rows differ"

printf '\n%-32s %s\n' "rows before the accident" "$before"
printf '%-32s %s\n' "rows after the accident" "$after_delete after a DELETE, then 0 (table dropped)"
printf '%-32s %s\n' "rows after PITR restore" "$after_restore"
printf '%-32s %s\n' "rows after pgBackRest restore" "$after_pgbr"
printf '%-32s %s\n' "rows after pg_dump/pg_restore" "$after_dump"
step "drill passed"
