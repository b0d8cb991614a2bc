#!/usr/bin/env bash
# tests/run.sh UNIT_BIN... -- ITEST_BIN...
# Runs every unit test, then every integration test, against one throwaway
# PostgreSQL 15 cluster started here and stopped at the end (also on failure or
# Ctrl-C). Each integration test creates its own database in it and starts its
# own broker processes. Exit status: 0 only if every binary passed.
set -uo pipefail
cd "$(dirname "$0")/.."

unit=()
itest=()
target=unit
for arg in "$@"; do
    if [ "$arg" = "--" ]; then target=itest; continue; fi
    if [ $target = unit ]; then unit+=("$arg"); else itest+=("$arg"); fi
done

tmp=$(mktemp -d /tmp/puente-test.XXXXXX)
cleanup() {
    tests/lib/pgcluster.sh stop "$tmp/pg" >/dev/null 2>&1
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port for the throwaway cluster.
port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$candidate) 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "tests/run.sh: no free port" >&2; exit 1; }

if ! conninfo=$(tests/lib/pgcluster.sh start "$tmp/pg" "$port" | tail -n 1); then
    echo "tests/run.sh: cannot start the throwaway PostgreSQL" >&2
    exit 1
fi
export PUENTE_TEST_DB="$conninfo"
export PUENTE_TEST_PGDIR="$tmp/pg"
export PUENTE_TEST_PGPORT="$port"
export PUENTE_SQL_DIR="$PWD/broker/sql"
export PUENTE_BROKER_BIN="$PWD/build/puente-broker"
export PUENTE_CLI_BIN="$PWD/build/puente"
export PUENTE_TEST_TMP="$tmp"

failed=()
passed=0
run_one() {
    local bin=$1 rc
    echo
    echo "=== $(basename "$bin")"
    if [ -n "${VALGRIND:-}" ]; then
        valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 "$bin"
    else
        "$bin"
    fi
    rc=$?
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed+=("$(basename "$bin") (exit $rc)"); fi
}
for bin in "${unit[@]}"; do run_one "$bin"; done
if [ -z "${UNIT_ONLY:-}" ]; then
    for bin in "${itest[@]}"; do run_one "$bin"; done
fi

echo
echo "=== summary: $passed passed, ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "FAILED: $f"; done
[ ${#failed[@]} -eq 0 ]
