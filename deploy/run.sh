#!/usr/bin/env bash
# deploy/run.sh — what `make run` does (see README.md):
#   1. starts a private PostgreSQL 15 cluster under var/pg (unless PUENTE_DB is set),
#   2. creates keys for the broker, the operator and the demo organisations under
#      var/keys (only those missing),
#   3. starts puente-broker on PUENTE_ENDPOINT (default tcp://127.0.0.1:7550),
#   4. registers the demo organisations and agreements between every pair,
#   5. keeps the broker in the foreground; Ctrl-C stops it and then PostgreSQL.
# Idempotent: a second run reuses var/.
set -euo pipefail
cd "$(dirname "$0")/.."

VAR=${PUENTE_VAR:-var}
KEYS=${PUENTE_KEYS:-$VAR/keys}
ENDPOINT=${PUENTE_ENDPOINT:-tcp://127.0.0.1:7550}
PGPORT=${PUENTE_PGPORT:-55432}
ORGS=(MX-DIF GT-PGN HN-DINAF SV-CONNA US-ORR)
# Service types each receives (Puente codes of adapters/primero/codelists/v1/service_type.csv; the broker
# refuses a message whose service_type its recipient did not register), and
# tracing_focal_point: each national authority is its country's tracing focal
# point (a tracing.request reaches exactly the focal points of its countries).
# The same lists are in tests/lib/harness.c (pt_harness_services).
declare -A SERVICES=(
    [MX-DIF]=child_protection,safehouse,psychosocial,legal_assistance,health,family_mediation,family_reunification,education,tracing_focal_point
    [GT-PGN]=child_protection,psychosocial,legal_assistance,health,family_mediation,family_reunification,education,tracing_focal_point
    [HN-DINAF]=child_protection,safehouse,psychosocial,legal_assistance,health,family_reunification,tracing_focal_point
    [SV-CONNA]=child_protection,psychosocial,legal_assistance,health,family_reunification,tracing_focal_point
    [US-ORR]=safehouse,health,psychosocial,legal_assistance,education,family_reunification,tracing_focal_point
)
PURPOSES=service_provision,case_transfer,social_inquiry,family_tracing,reintegration
CLI=build/puente
BROKER=build/puente-broker

mkdir -p "$VAR"
started_pg=""
if [ -z "${PUENTE_DB:-}" ]; then
    PUENTE_DB=$(tests/lib/pgcluster.sh start "$VAR/pg" "$PGPORT" | tail -n 1)
    started_pg=1
fi
export PUENTE_DB PUENTE_KEYS="$KEYS" PUENTE_BROKER="$ENDPOINT"
# The CLI, run from this directory without --broker / PUENTE_BROKER, reads it (README).
echo "$ENDPOINT" > "$VAR/endpoint"

broker_pid=""
stop_all() {
    trap - INT TERM EXIT
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [ -n "$started_pg" ]; then
        tests/lib/pgcluster.sh stop "$VAR/pg" || true
    fi
}
trap stop_all EXIT
trap 'echo; echo "stopping..."; exit 0' INT TERM

for org in broker operator "${ORGS[@]}"; do
    "$CLI" keygen --org "$org" --keys "$KEYS" --if-missing >/dev/null
done

"$BROKER" --endpoint "$ENDPOINT" --db "$PUENTE_DB" --keys "$KEYS" --sql broker/sql &
broker_pid=$!

# Register the demo organisations (idempotent) once the broker answers.
for attempt in $(seq 1 100); do
    if "$CLI" org add "${ORGS[0]}" --services "${SERVICES[${ORGS[0]}]}" >/dev/null 2>&1; then break; fi
    kill -0 "$broker_pid" 2>/dev/null || { echo "puente-broker exited" >&2; exit 1; }
    sleep 0.2
done
for org in "${ORGS[@]}"; do "$CLI" org add "$org" --services "${SERVICES[$org]}" >/dev/null; done
for ((i = 0; i < ${#ORGS[@]}; i++)); do
    for ((j = i + 1; j < ${#ORGS[@]}; j++)); do
        a=${ORGS[$i]}; b=${ORGS[$j]}
        "$CLI" agreement add --id "AGR-$a-$b" --between "$a" "$b" --purposes "$PURPOSES" --types '*' >/dev/null
    done
done

cat <<TXT

  Puente broker running on $ENDPOINT (database: $( [ -n "$started_pg" ] && echo "private PostgreSQL in $VAR/pg, port $PGPORT" || echo "PUENTE_DB"))
  Organisations: ${ORGS[*]} (keys in $KEYS), agreements between every pair;
  each registers Primero service types and is its country's tracing focal point.
  From another terminal, in this directory:
      build/puente example referral.request > referral.json
      build/puente send --as MX-DIF --to GT-PGN --type referral.request --case CASE-0001 --json referral.json
      build/puente recv --as GT-PGN
      build/puente trail --case CASE-0001
  Ctrl-C stops the broker and PostgreSQL.

TXT
wait "$broker_pid"
