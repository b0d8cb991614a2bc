# bench/lib.sh — sourced by bench/run.sh and bench/long.sh (not run on its own).
# bench_pg_start: with $tmp set (a scratch directory the caller made), removes it and
# the PostgreSQL under it on exit, starts a private PostgreSQL 15 (durable commits) on
# a free loopback port, sets $port and $conninfo, and exports what build/bench/loadgen
# and the harness read. The benchmark measures the broker, not its limits: no
# submission rate limit and no queue quota (ingest modes leave tens of thousands of
# messages waiting) unless PUENTE_SUBMIT_RATE / PUENTE_QUEUE_QUOTA are set.

bench_cleanup() {
    tests/lib/pgcluster.sh stop "$tmp/pg" >/dev/null 2>&1
    rm -rf -- "$tmp"
}

# BENCH_PGSS=1: the server loads pg_stat_statements (build/bench/loadgen writes each mode's
# statements when BENCH_PGSS_OUT is set: bench/run.sh).
# BENCH_PG_OPTS: server settings (postgres -c ...), by default sized for a database of
# millions of messages on this 24 GiB machine, as README "Installing" recommends for
# production; durability unchanged (fsync and synchronous_commit stay on).
BENCH_PG_DEFAULT_OPTS="-c shared_buffers=2GB -c wal_compression=lz4 -c checkpoint_timeout=15min"
bench_pg_start() {
    trap bench_cleanup EXIT
    export PGCLUSTER_OPTS="${BENCH_PG_OPTS-$BENCH_PG_DEFAULT_OPTS}"
    [ "${BENCH_PGSS:-0}" != 0 ] &&
        PGCLUSTER_OPTS="$PGCLUSTER_OPTS -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on"
    trap 'exit 130' INT TERM
    port=""
    local candidate
    for _ in $(seq 1 50); do
        candidate=$((20000 + RANDOM % 20000))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$candidate) 2>/dev/null; then port=$candidate; break; fi
    done
    [ -n "$port" ] || { echo "bench: no free port" >&2; exit 1; }
    conninfo=$(tests/lib/pgcluster.sh start "$tmp/pg" "$port" 2>"$tmp/pgcluster.log" | tail -n 1) ||
        { cat "$tmp/pgcluster.log" >&2; echo "bench: cannot start PostgreSQL" >&2; exit 1; }
    export PUENTE_TEST_DB="$conninfo"
    export PUENTE_TEST_TMP="$tmp"
    # The migrations of the build measured: another tree's (BUILD=) may differ.
    export PUENTE_SQL_DIR="${PUENTE_SQL_DIR:-$PWD/broker/sql}"
    export PUENTE_BROKER_BIN="$PWD/${build:-build}/puente-broker"
    export BENCH_PG_PIDFILE="$tmp/pg/data/postmaster.pid"
    export PUENTE_SUBMIT_RATE="${PUENTE_SUBMIT_RATE:-0}" PUENTE_QUEUE_QUOTA="${PUENTE_QUEUE_QUOTA:-0}"
}
