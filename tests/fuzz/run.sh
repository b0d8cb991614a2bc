#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS FUZZ_BIN...
# Runs each libFuzzer harness for SECONDS on a fresh copy of its committed corpus
# (tests/fuzz/corpus/<name>/, never grown by this script). A crash, leak, timeout
# or out-of-memory leaves its input in build/fuzz/artifacts/ and fails the run.
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:?usage: tests/fuzz/run.sh SECONDS FUZZ_BIN...}
shift
work=build/fuzz/work
artifacts=build/fuzz/artifacts
mkdir -p "$artifacts"
failed=()
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    rm -rf -- "$work/$name"
    mkdir -p "$work/$name"
    if [ -d "tests/fuzz/corpus/$name" ]; then cp -- tests/fuzz/corpus/"$name"/* "$work/$name/"; fi
    echo "=== fuzz_$name for ${seconds}s"
    # -timeout: one input taking over 10 s is a bug (every decoder is O(input)).
    "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work/$name" \
        >"$work/$name.log" 2>&1
    rc=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$work/$name.log" |
        tr '\n' ' '
    echo
    if [ $rc -ne 0 ]; then
        failed+=("fuzz_$name (exit $rc)")
        tail -n 60 "$work/$name.log"
    fi
done
echo
echo "=== fuzz summary: $(( $# - ${#failed[@]} )) passed, ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "FAILED: $f (log in $work/, input in $artifacts/)"; done
[ ${#failed[@]} -eq 0 ]
