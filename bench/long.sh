#!/usr/bin/env bash
# bench/long.sh — what `make bench-long` runs (issue 8, long mode). Starts a private
# PostgreSQL 15 (durable commits, as bench/run.sh) under a temp dir, then
# `build/bench/loadgen --long`, which in one run:
#   1. measures ingest on the (near) empty database, BENCH_LONG_REPEATS times, and
#      end to end once (ack receiver);
#   2. seeds BENCH_LONG_ROWS stored, delivered and acknowledged messages (default
#      10 000 000) by bulk SQL, not through the broker, and prints how long it took
#      (see the comment "long mode" in bench/loadgen.c for what is approximated:
#      `puente audit verify` fails on this throwaway database);
#   3. measures ingest and end to end again at that size, and the ratio;
#   4. offers BENCH_LONG_RATE msg/s for BENCH_LONG_MINUTES (default 10) with a receiver
#      acking, sampling the broker's VmRSS every BENCH_LONG_SAMPLE seconds (default 5):
#      start, end, max, slope in MiB/min. Default rate: 60 % of the end-to-end rate
#      just measured at full size, in steps of 50, at most 1000/s (a load the broker
#      sustains, so that a growing backlog does not pass for a leak).
# Writes bench/results/<date>-<host>-long.{json,txt,dat,svg} (svg if gnuplot is there).
# Disk: about 7 GB per million seeded messages plus 6 GB (the database lives under /tmp):
# about 76 GB for 10 million.
# BUILD: the build directory whose broker and loadgen run (default build).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}

rows=${BENCH_LONG_ROWS:-10000000}
minutes=${BENCH_LONG_MINUTES:-10}
rate=${BENCH_LONG_RATE:-0}   # 0: 60 % of what the machine sustains end to end, at most 1000
repeats=${BENCH_LONG_REPEATS:-3}
sample=${BENCH_LONG_SAMPLE:-5}
quick=()
[ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && quick=(--quick)
[ -x "$build/bench/loadgen" ] && [ -x "$build/puente-broker" ] || { echo "bench: run 'make bench-long'" >&2; exit 1; }

tmp=$(mktemp -d /tmp/puente-bench-long.XXXXXX)
# About 6.6 KiB per seeded message (measured at 1 million), plus WAL (max_wal_size=4GB).
need_kib=$(( rows * 7 + 6000000 ))
free_kib=$(df -Pk "$tmp" | awk 'NR == 2 { print $4 }')
if [ -n "$free_kib" ] && [ "$free_kib" -lt "$need_kib" ]; then
    rm -rf -- "$tmp"
    echo "bench: $rows messages need about $((need_kib / 1048576)) GiB under /tmp, $((free_kib / 1048576)) GiB free" >&2
    exit 1
fi
. bench/lib.sh
bench_pg_start

mkdir -p bench/results
stem="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$(hostname -s)-long"
echo "bench-long: $rows seeded messages, memory run $minutes min (PostgreSQL on port $port)"
"$build/bench/loadgen" --long "$rows" --minutes "$minutes" --rate "$rate" --repeats "$repeats" \
    --sample "$sample" "${quick[@]}" --json "$stem.json" --dat "$stem.dat" | tee "$stem.txt"
rc=${PIPESTATUS[0]}
[ $rc -eq 0 ] || { echo "bench: loadgen --long failed (exit $rc)" >&2; exit $rc; }

offered=$(sed -n 's/.*"memory": {[^}]*"offered_per_s": \([0-9]*\).*/\1/p' "$stem.json" | head -n 1)
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<GP 2>/dev/null && echo "plot: $stem.svg"
set terminal svg size 720,420 dynamic font "sans,11"
set output "$stem.svg"
set title "puente-broker memory: ${offered:-?} msg/s offered for $minutes min, $rows messages stored"
set xlabel "time (s)"
set ylabel "broker VmRSS (MiB)"
set y2label "messages receipted"
set y2tics
set ytics nomirror
set yrange [0:*]
set key top left
set grid
plot "$stem.dat" using 1:2 with linespoints pt 7 ps 0.5 lc 1 title "VmRSS", \
     "" using 1:3 axes x1y2 with lines lc 3 title "receipts"
GP
else
    echo "bench: gnuplot not installed (apt-get install -y gnuplot-nox); no plot"
fi
echo "results: $stem.json"
