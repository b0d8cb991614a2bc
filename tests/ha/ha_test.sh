#!/usr/bin/env bash
# tests/ha/ha_test.sh — what `make ha-test` runs (docs/ha.md):
#   1. brings up deploy/ha/ha-stack.sh (three etcd, three PostgreSQL 15 under Patroni,
#      synchronous replication, two puente-brokers on the multi-host connection string)
#      in a scratch directory;
#   2. sends a referral MX-DIF -> HN-DINAF through the CLI to broker1 (HA_BROKER=0 skips
#      the broker part and starts no brokers);
#   3. starts build/ha/ha_writer: one-row transactions in a loop, each retried on a new
#      connection until it commits; and build/ha/ha_load: three SDK senders (MX-DIF,
#      HN-DINAF, SV-CONNA, durable outboxes, list "broker1,broker2") streaming to two
#      recipients (GT-PGN, US-ORR, durable inboxes, list "broker2,broker1");
#   4. loses the primary's machine (SIGKILL of its Patroni, postmaster and backends);
#   5. waits for the writer to commit on the new primary, sends a second referral to
#      broker2 (retried while the broker answers "retry later"), SIGKILLs broker1 while
#      the SDK stream goes on, and receives both referrals at HN-DINAF from broker2;
#      waits for ha_load: every receipted message delivered exactly once;
#      runs `puente audit verify --db` on the new primary;
#   6. stops the writer, which checks every acknowledged row on the new primary;
#   7. brings the lost node back (`up`: it rejoins as a standby), then everything down.
# Prints the failover time, rows committed and rows lost; exits non-zero when a row
# is lost, the stack does not fail over, or (with the broker) a referral is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=${BUILD:-build}
STACK=deploy/ha/ha-stack.sh
WRITER=$BUILD/ha/ha_writer
LOAD=$BUILD/ha/ha_load
LOAD_PER_SENDER=${HA_LOAD_PER_SENDER:-600}   # messages per SDK sender
LOAD_RATE=${HA_LOAD_RATE:-20}                # per sender per second: about 30 s of stream
CLI=$BUILD/puente
BROKER=$BUILD/puente-broker
HA_BROKER=${HA_BROKER:-1}
WRITE_AFTER=${HA_WRITE_AFTER:-3}   # seconds of writing before and after the failover

[ -x "$WRITER" ] || { echo "ha_test: $WRITER missing (make ha-test builds it)" >&2; exit 2; }
if [ "$HA_BROKER" = 1 ] && { [ ! -x "$BROKER" ] || [ ! -x "$CLI" ]; }; then
    echo "ha_test: $BROKER or $CLI missing; run make first or set HA_BROKER=0" >&2
    exit 2
fi

DIR=$(mktemp -d /tmp/puente-ha.XXXXXX)
writer_pid=""
load_pid=""
fail=0
cleanup() {
    set +e
    [ -n "$writer_pid" ] && kill -TERM "$writer_pid" 2>/dev/null && wait "$writer_pid" 2>/dev/null
    [ -n "$load_pid" ] && kill -KILL "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
    "$STACK" down "$DIR" >/dev/null 2>&1
    if [ "$fail" -eq 0 ] && [ -z "${HA_KEEP:-}" ]; then
        rm -rf -- "$DIR"
    else
        echo "ha_test: logs kept in $DIR" >&2
    fi
}
trap cleanup EXIT
t_start=$SECONDS

echo "ha_test: bringing up the stack in $DIR"
[ "$HA_BROKER" = 1 ] && export HA_BROKERS=2 || export HA_BROKERS=0
CONNINFO=$("$STACK" up "$DIR" 2>"$DIR/up.log" | tail -n 1) || { cat "$DIR/up.log" >&2; fail=1; exit 1; }
echo "ha_test: $CONNINFO"

# --- the stack's two brokers on the multi-host string -----------------------------------
# Sends a referral, retrying while the broker cannot commit (exit 3: unreachable or
# "retry later"). Prints the receipt's message id.
send_referral() {
    local case_token=$1 deadline=$((SECONDS + 90)) out rc
    while :; do
        rc=0
        out=$("$CLI" send --as MX-DIF --to HN-DINAF --type referral.request --case "$case_token" \
            --json "$DIR/referral.json" --timeout 5s --json-output 2>>"$DIR/cli.err") || rc=$?
        if [ $rc -eq 0 ]; then
            echo "$out"
            return 0
        fi
        [ $rc -eq 3 ] && [ $SECONDS -lt $deadline ] || { echo "ha_test: send $case_token exit $rc" >&2; return 1; }
        echo "ha_test: send $case_token: exit $rc, retrying" >&2
        sleep 1
    done
}
if [ "$HA_BROKER" = 1 ]; then
    mapfile -t BROKERS < <("$STACK" brokers "$DIR")
    [ ${#BROKERS[@]} -eq 2 ] || { echo "ha_test: expected two brokers, have ${#BROKERS[@]}" >&2; fail=1; exit 1; }
    PUENTE_BROKER=${BROKERS[0]}
    export PUENTE_KEYS=$DIR/keys PUENTE_BROKER
    for org in MX-DIF GT-PGN HN-DINAF SV-CONNA US-ORR; do
        "$CLI" keygen --org "$org" --keys "$PUENTE_KEYS" --if-missing >/dev/null
        "$CLI" org add "$org" --services child_protection,psychosocial,legal_assistance,health,tracing_focal_point >/dev/null
    done
    # AGR-HA carries the CLI referrals; the others the SDK stream of ha_load.
    for pair in "AGR-HA MX-DIF HN-DINAF" "AGR-HA-1 MX-DIF GT-PGN" "AGR-HA-2 HN-DINAF US-ORR" \
                "AGR-HA-3 SV-CONNA GT-PGN" "AGR-HA-4 SV-CONNA US-ORR"; do
        set -- $pair
        "$CLI" agreement add --id "$1" --between "$2" "$3" \
            --purposes service_provision,case_transfer,social_inquiry,family_tracing,reintegration \
            --types '*' >/dev/null
    done
    "$CLI" example referral.request >"$DIR/referral.json"
    send_referral CASE-HA-BEFORE >"$DIR/receipt-before.json" || { fail=1; exit 1; }
    echo "ha_test: brokers ${BROKERS[*]}; referral CASE-HA-BEFORE receipted by broker1"
fi

# --- writer, failover ---------------------------------------------------------------------
"$WRITER" "$CONNINFO" >"$DIR/writer.out" 2>"$DIR/writer.err" &
writer_pid=$!
if [ "$HA_BROKER" = 1 ]; then
    mkdir -p "$DIR/load"
    "$LOAD" "${BROKERS[0]},${BROKERS[1]}" "$PUENTE_KEYS" "$DIR/load" "$LOAD_PER_SENDER" \
        "$LOAD_RATE" "${BROKERS[1]},${BROKERS[0]}" >"$DIR/load.out" 2>"$DIR/load.err" &
    load_pid=$!
    echo "ha_test: ha_load streaming $LOAD_PER_SENDER messages from each of 3 SDK senders at $LOAD_RATE/s"
fi
sleep "$WRITE_AFTER"
kill -0 "$writer_pid" 2>/dev/null || { cat "$DIR/writer.err" >&2; fail=1; exit 1; }
lost_node=$("$STACK" leader "$DIR" 2>/dev/null || true)
if ! new_primary=$("$STACK" failover "$DIR" 2>"$DIR/failover.log"); then
    cat "$DIR/failover.log" >&2; fail=1; exit 1
fi
cat "$DIR/failover.log"
deadline=$((SECONDS + 120))
until grep -q "recovered after" "$DIR/writer.err"; do
    [ $SECONDS -lt $deadline ] || { echo "ha_test: the writer did not recover" >&2; cat "$DIR/writer.err" >&2; fail=1; exit 1; }
    sleep 0.2
done
grep -v "committed [0-9]" "$DIR/writer.err" | sed 's/^/  /'

if [ "$HA_BROKER" = 1 ]; then
    PUENTE_BROKER=${BROKERS[1]} send_referral CASE-HA-AFTER >"$DIR/receipt-after.json" || { fail=1; exit 1; }
    echo "ha_test: referral CASE-HA-AFTER receipted by broker2 after the failover"
    kill -KILL "$(cat "$DIR/broker1/pid")" 2>/dev/null || true
    if grep -q "^ha_load: sent" "$DIR/load.err"; then mid="after the SDK senders finished sending"; else mid="while the SDK senders are sending"; fi
    echo "ha_test: broker1 SIGKILLed $mid"
fi
sleep "$WRITE_AFTER"
kill -TERM "$writer_pid"
wrc=0
wait "$writer_pid" || wrc=$?
writer_pid=""
result=$(cat "$DIR/writer.out")
[ -n "$result" ] || { cat "$DIR/writer.err" >&2; fail=1; exit 1; }
committed=0 retried=0 outages=0 failover_ms=unknown lost=-1
for kv in $result; do   # committed= retried= outages= failover_ms= lost= in_doubt_present=
    key=${kv%%=*} val=${kv#*=}
    case $key in
        committed | retried | outages | failover_ms | lost) [[ $val =~ ^[0-9]+$ ]] && printf -v "$key" '%s' "$val" ;;
    esac
done

load_result="" lrc=0 verify_rc=-
if [ "$HA_BROKER" = 1 ]; then
    wait "$load_pid" || lrc=$?
    load_pid=""
    load_result=$(cat "$DIR/load.out")
    sed 's/^/  /' "$DIR/load.err"
    verify_rc=0
    "$CLI" audit verify --db "$CONNINFO" --keys "$PUENTE_KEYS" >"$DIR/verify.out" 2>&1 || verify_rc=$?
    tail -n 3 "$DIR/verify.out" | sed 's/^/  audit verify: /'
fi

delivered_before=- delivered_after=-
if [ "$HA_BROKER" = 1 ]; then
    PUENTE_BROKER=${BROKERS[1]} "$CLI" recv --as HN-DINAF --timeout 5s --json-output \
        >"$DIR/recv.json" 2>>"$DIR/cli.err" || true
    delivered_before=$(grep -o '"case_token": *"CASE-HA-BEFORE"' "$DIR/recv.json" | wc -l)
    delivered_after=$(grep -o '"case_token": *"CASE-HA-AFTER"' "$DIR/recv.json" | wc -l)
fi

# The lost node comes back as a standby of the new primary.
"$STACK" up "$DIR" >/dev/null 2>"$DIR/rejoin.log" || { cat "$DIR/rejoin.log" >&2; fail=1; }
rejoined=no
for _ in $(seq 1 60); do
    if "$STACK" status "$DIR" >"$DIR/status.txt" 2>&1 && ! grep -q "role unknown" "$DIR/status.txt"; then
        rejoined=yes; break
    fi
    sleep 0.5
done

echo
echo "ha_test: failover time (first failed commit -> first commit on the new primary): ${failover_ms} ms"
echo "ha_test: primary lost: ${lost_node:-?}, new primary: $new_primary"
echo "ha_test: rows committed (acknowledged): $committed, transactions retried: $retried, rows lost: $lost"
if [ "$HA_BROKER" = 1 ]; then
    echo "ha_test: referrals delivered to HN-DINAF by broker2 (broker1 killed): before failover $delivered_before, after $delivered_after (each must be 1)"
    echo "ha_test: SDK stream (3 senders -> 2 recipients across 2 brokers): ${load_result:-no result} (ha_load exit $lrc)"
    echo "ha_test: puente audit verify: exit $verify_rc (must be 0)"
fi
echo "ha_test: lost node rejoined as a standby: $rejoined"
echo "ha_test: total $((SECONDS - t_start)) s"
[ "$wrc" -eq 0 ] && [ "$lost" -eq 0 ] && [ "$committed" -gt 0 ] && [ "$outages" -ge 1 ] || fail=1
[ "$rejoined" = yes ] || fail=1
if [ "$HA_BROKER" = 1 ]; then
    [ "$delivered_before" = 1 ] && [ "$delivered_after" = 1 ] || fail=1
    [ "$lrc" -eq 0 ] && [ "$verify_rc" = 0 ] || fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "ha_test: FAIL"
    exit 1
fi
echo "ha_test: PASS"
