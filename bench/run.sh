#!/usr/bin/env bash
# bench/run.sh — what `make bench` runs. Starts a private PostgreSQL 15 (durable
# commits: fsync and synchronous_commit on) under a temp dir, then build/bench/loadgen,
# which creates the keys, the database and a real puente-broker (tests/lib/harness.c),
# measures the component limits and runs the modes. Writes
#   bench/results/<date>-<host>.json   every figure
#   bench/results/<date>-<host>.txt    the table as printed
#   bench/results/<date>-<host>.svg    latency versus offered rate (if gnuplot is there)
#   bench/results/<date>-<host>-perf-<mode>.txt  perf report of the broker (if perf works)
#   bench/results/<date>-<host>-pgss-<mode>.txt  PostgreSQL statements per mode (BENCH_PGSS=1)
# BENCH_QUICK=1: a few seconds per mode. BENCH_PERF=0: no profile. BENCH_PGSS=1: the
# statements PostgreSQL ran in each mode, in microseconds per message (pg_stat_statements).
# BENCH_BACKLOG=N: messages seeded waiting for a recipient that is down before the last
# modes, backlog-200 and drain-200 (the recipient comes back and drains while the others
# keep 200 msg/s; default 300 000 quick, 1 000 000 otherwise; 0 skips both).
# BUILD: the build directory whose broker and loadgen are measured (default build; the
# Makefile passes its own, so `make bench BUILD=build/x` measures that tree).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}

quick=()
[ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && quick=(--quick)
[ -x "$build/bench/loadgen" ] && [ -x "$build/puente-broker" ] || { echo "bench: run 'make bench'" >&2; exit 1; }

tmp=$(mktemp -d /tmp/puente-bench.XXXXXX)
. bench/lib.sh
bench_pg_start

mkdir -p bench/results
stem="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$(hostname -s)"
[ "${BENCH_PGSS:-0}" != 0 ] && export BENCH_PGSS_OUT="$stem-pgss"
perf=()
if [ "${BENCH_PERF:-1}" != 0 ] && command -v perf >/dev/null 2>&1 &&
    perf record -q -o "$tmp/probe.data" -- true >/dev/null 2>&1; then
    perf=(--perf "$tmp/perf.data")
fi

"$build/bench/loadgen" "${quick[@]}" --json "$stem.json" --dat "$tmp/latency.dat" "${perf[@]}" | tee "$stem.txt"
rc=${PIPESTATUS[0]}
[ $rc -eq 0 ] || { echo "bench: loadgen failed (exit $rc)" >&2; exit $rc; }

if [ ${#perf[@]} -gt 0 ]; then
    for data in "$tmp"/perf.data.*; do
        [ -f "$data" ] || continue
        mode=${data##*.}
        # Self time by library (Debian's libcrypto has no symbols: it shows as one
        # library), then inclusive time per symbol (DWARF call graphs).
        {
            echo "# perf record --call-graph dwarf -F 499 -p <puente-broker> during mode '$mode'"
            echo "## self time by library"
            perf report -i "$data" --stdio --no-children --sort dso -g none \
                --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 30
            echo "## inclusive time by symbol (children)"
            perf report -i "$data" --stdio --children --sort symbol -g none \
                --percent-limit 2 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 80
        } >"$stem-perf-$mode.txt"
        echo "profile of the broker in mode $mode: $stem-perf-$mode.txt"
    done
fi

if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<GP 2>/dev/null && echo "plot: $stem.svg"
set terminal svg size 720,420 dynamic font "sans,11"
set output "$stem.svg"
set title "puente-broker: latency versus offered rate (1 KiB, verified, durable)"
set xlabel "offered rate (messages/s); dots: saturation, at the rate achieved"
set ylabel "latency (ms)"
set logscale y
set key top left
set grid
plot "$tmp/latency.dat" index 0 using 1:3 with linespoints lc 1 title "receipt p50", \
     "" index 0 using 1:4 with linespoints lc 2 title "receipt p99", \
     "" index 0 using 1:5 with linespoints lc 3 title "delivery p50", \
     "" index 0 using 1:6 with linespoints lc 4 title "delivery p99", \
     "" index 1 using 1:4 with points pt 7 ps 1.5 lc 2 title "receipt p99 at saturation", \
     "" index 1 using 1:6 with points pt 7 ps 1.5 lc 4 title "delivery p99 at saturation"
GP
else
    echo "bench: gnuplot not installed (apt-get install -y gnuplot-nox); no plot"
fi
cp "$tmp/latency.dat" "$stem.dat" 2>/dev/null
echo "results: $stem.json"

# The auditor's figure (issue 4): `puente audit verify` over a log of one million
# events (100 000 in quick mode). BENCH_AUDIT=0 skips it.
if [ "${BENCH_AUDIT:-1}" != 0 ]; then
    BENCH_AUDIT_EVENTS=${BENCH_AUDIT_EVENTS:-$([ -n "${BENCH_QUICK:-}" ] && echo 100000 || echo 1000000)} \
        bench/audit_verify.sh
fi
