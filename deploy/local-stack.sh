#!/usr/bin/env bash
# deploy/local-stack.sh — the stack of deploy/compose.yaml on one machine, without
# containers: a private PostgreSQL 15 (tests/lib/pgcluster.sh), keys, puente-broker,
# the bridges of MX-DIF and GT-PGN with their bearer tokens, and a webhook target
# that records what GT-PGN's bridge posts to it.
#
#   deploy/local-stack.sh up     [DIR]   start everything (idempotent: reuses DIR)
#   deploy/local-stack.sh status [DIR]   exit 0 if every part runs, 3 otherwise
#   deploy/local-stack.sh down   [DIR]   stop everything (keeps DIR; rm -rf DIR to start over)
#
# DIR defaults to var/stack. Ports are picked free on the first `up` and kept in
# DIR/stack.env (set PUENTE_STACK_PGPORT, _BROKER_PORT, _METRICS_PORT, _MX_PORT,
# _GT_PORT, _WEBHOOK_PORT to choose them). Binaries come from PUENTE_STACK_BIN
# (default build/). Everything listens on 127.0.0.1 only. Configuration is one INI
# file, DIR/puente.conf ([broker] and [bridge]); per-bridge settings are flags.
# Nothing here is for production: the database uses trust authentication.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

cmd=${1:-}
DIR=${2:-var/stack}
BIN=${PUENTE_STACK_BIN:-$REPO/build}
ORGS=(MX-DIF GT-PGN)
# Service types both receive (a referral's service_type must be registered by its
# recipient) and tracing focal point of their country.
STACK_SERVICES=child_protection,psychosocial,legal_assistance,health,family_reunification,tracing_focal_point
PURPOSES=service_provision,case_transfer,social_inquiry,family_tracing,reintegration

die() { echo "local-stack: $*" >&2; exit 1; }
[ -n "$cmd" ] || die "usage: $0 up|down|status [DIR]"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
ENV_FILE=$DIR/stack.env

free_port() {
    local candidate
    for _ in $(seq 1 100); do
        candidate=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return; fi
    done
    die "no free port"
}

alive() { [ -f "$DIR/run/$1.pid" ] && kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null; }

port_open() {   # PORT -> 0 when something accepts connections on it
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

http_ok() {   # URL -> 0 when it answers 2xx
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

# Starts NAME in the background with its output in DIR/logs/NAME.log.
start() {
    local name=$1; shift
    if alive "$name"; then return; fi
    nohup "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/run/$name.pid"
}

stop() {
    local name=$1 pid
    alive "$name" || { rm -f "$DIR/run/$name.pid"; return 0; }
    pid=$(cat "$DIR/run/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/run/$name.pid"
}

print_endpoints() {
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    cat <<TXT
  Puente local stack in $DIR
    PostgreSQL      $PUENTE_STACK_DB
    broker          tcp://127.0.0.1:$PUENTE_STACK_BROKER_PORT  (config $DIR/puente.conf)
    metrics         http://127.0.0.1:$PUENTE_STACK_METRICS_PORT/metrics  /healthz  /readyz
    MX-DIF bridge   http://127.0.0.1:$PUENTE_STACK_MX_PORT/v1/  token in $DIR/secrets/MX-DIF.token
    GT-PGN bridge   http://127.0.0.1:$PUENTE_STACK_GT_PORT/v1/  token in $DIR/secrets/GT-PGN.token
    webhook target  http://127.0.0.1:$PUENTE_STACK_WEBHOOK_PORT/puente  (GT-PGN's bridge posts here;
                    bodies in $DIR/webhook/received.jsonl)
  Try:
    curl -H "Authorization: Bearer \$(cat $DIR/secrets/MX-DIF.token)" -H "Content-Type: application/json" \\
         -d @referral.json http://127.0.0.1:$PUENTE_STACK_MX_PORT/v1/messages
    curl -H "Authorization: Bearer \$(cat $DIR/secrets/GT-PGN.token)" \\
         http://127.0.0.1:$PUENTE_STACK_GT_PORT/v1/messages
  Logs in $DIR/logs/; stop with: $0 down $DIR
TXT
}

up() {
    mkdir -p "$DIR/run" "$DIR/logs" "$DIR/keys" "$DIR/secrets" "$DIR/webhook" "$DIR/bridge"
    chmod 0700 "$DIR/secrets"
    if [ ! -f "$ENV_FILE" ]; then
        {
            echo "PUENTE_STACK_PGPORT=${PUENTE_STACK_PGPORT:-$(free_port)}"
            echo "PUENTE_STACK_BROKER_PORT=${PUENTE_STACK_BROKER_PORT:-$(free_port)}"
            echo "PUENTE_STACK_METRICS_PORT=${PUENTE_STACK_METRICS_PORT:-$(free_port)}"
            echo "PUENTE_STACK_MX_PORT=${PUENTE_STACK_MX_PORT:-$(free_port)}"
            echo "PUENTE_STACK_GT_PORT=${PUENTE_STACK_GT_PORT:-$(free_port)}"
            echo "PUENTE_STACK_WEBHOOK_PORT=${PUENTE_STACK_WEBHOOK_PORT:-$(free_port)}"
        } >"$ENV_FILE"
    fi
    # shellcheck disable=SC1090
    . "$ENV_FILE"

    # 1. PostgreSQL
    local db
    db=$(tests/lib/pgcluster.sh start "$DIR/pg" "$PUENTE_STACK_PGPORT" | tail -n 1)
    grep -q '^PUENTE_STACK_DB=' "$ENV_FILE" || echo "PUENTE_STACK_DB='$db'" >>"$ENV_FILE"

    # 2. keys and secrets (only those missing)
    for org in broker operator "${ORGS[@]}"; do
        "$BIN/puente" keygen --org "$org" --keys "$DIR/keys" --if-missing >/dev/null
    done
    for org in "${ORGS[@]}"; do
        for f in "$org.token" "$org.webhook-secret"; do
            [ -s "$DIR/secrets/$f" ] && continue
            (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/secrets/$f")
        done
    done

    # 3. one configuration file for the broker and the bridges
    cat >"$DIR/puente.conf" <<CONF
# written by deploy/local-stack.sh; see deploy/puente.conf.example for every key
[broker]
endpoint = tcp://127.0.0.1:$PUENTE_STACK_BROKER_PORT
db = $db
keys = $DIR/keys
sql_dir = $REPO/broker/sql
metrics_listen = 127.0.0.1:$PUENTE_STACK_METRICS_PORT

[bridge]
broker = tcp://127.0.0.1:$PUENTE_STACK_BROKER_PORT
keys = $DIR/keys
broker_timeout = 5s

[cli]
CONF
    chmod 0600 "$DIR/puente.conf"

    # 4. the webhook target: records each POST body as one line. Its port was free
    #    when chosen but may be taken since (nothing holds it until python binds):
    #    a port in use, or a target that exits instead of answering, gets a new
    #    port, up to three times.
    local tries=0 up_ok=""
    while ! alive webhook; do
        tries=$((tries + 1))
        [ $tries -le 3 ] || die "the webhook target does not start; see $DIR/logs/webhook.log"
        if [ $tries -gt 1 ] || port_open "$PUENTE_STACK_WEBHOOK_PORT"; then
            [ $tries -gt 1 ] || tries=2
            echo "webhook target: port $PUENTE_STACK_WEBHOOK_PORT taken" >>"$DIR/logs/webhook.log"
            PUENTE_STACK_WEBHOOK_PORT=$(free_port)
            sed -i "s/^PUENTE_STACK_WEBHOOK_PORT=.*/PUENTE_STACK_WEBHOOK_PORT=$PUENTE_STACK_WEBHOOK_PORT/" "$ENV_FILE"
        fi
        command -v python3 >/dev/null || die "python3 is needed for the webhook target"
        start webhook python3 -c '
import http.server, sys
out = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$PUENTE_STACK_WEBHOOK_PORT" "$DIR/webhook/received.jsonl"
        up_ok=""
        for _ in $(seq 1 50); do
            alive webhook || break
            if port_open "$PUENTE_STACK_WEBHOOK_PORT"; then
                sleep 0.2   # a bind that failed exits by now
                alive webhook && up_ok=1
                break
            fi
            sleep 0.1
        done
        [ -n "$up_ok" ] || stop webhook
    done

    # 5. the broker, then the organisations and their agreement
    start broker "$BIN/puente-broker" --config "$DIR/puente.conf"
    export PUENTE_BROKER=tcp://127.0.0.1:$PUENTE_STACK_BROKER_PORT PUENTE_KEYS=$DIR/keys
    local ok=""
    for _ in $(seq 1 150); do
        if "$BIN/puente" org add "${ORGS[0]}" --services "$STACK_SERVICES" >/dev/null 2>&1; then ok=1; break; fi
        alive broker || die "puente-broker exited; see $DIR/logs/broker.log"
        sleep 0.2
    done
    [ -n "$ok" ] || die "puente-broker does not answer; see $DIR/logs/broker.log"
    "$BIN/puente" org add "${ORGS[1]}" --services "$STACK_SERVICES" >/dev/null
    "$BIN/puente" agreement add --id "AGR-MX-DIF-GT-PGN" --between MX-DIF GT-PGN \
        --purposes "$PURPOSES" --types '*' >/dev/null

    # 6. the bridges
    local port webhook
    for org in "${ORGS[@]}"; do
        if [ "$org" = MX-DIF ]; then port=$PUENTE_STACK_MX_PORT; else port=$PUENTE_STACK_GT_PORT; fi
        webhook=()
        if [ "$org" = GT-PGN ]; then
            webhook=(--webhook "http://127.0.0.1:$PUENTE_STACK_WEBHOOK_PORT/puente"
                     --webhook-secret-file "$DIR/secrets/$org.webhook-secret")
        fi
        start "bridge-$org" "$BIN/puente-bridge" --config "$DIR/puente.conf" --org "$org" \
            --listen "127.0.0.1:$port" --token-file "$DIR/secrets/$org.token" \
            --state "$DIR/bridge/$org" "${webhook[@]}"
    done
    for org in "${ORGS[@]}"; do
        if [ "$org" = MX-DIF ]; then port=$PUENTE_STACK_MX_PORT; else port=$PUENTE_STACK_GT_PORT; fi
        ok=""
        for _ in $(seq 1 100); do
            if http_ok "http://127.0.0.1:$port/v1/openapi.json"; then ok=1; break; fi
            alive "bridge-$org" || die "the $org bridge exited; see $DIR/logs/bridge-$org.log"
            sleep 0.1
        done
        [ -n "$ok" ] || die "the $org bridge does not answer; see $DIR/logs/bridge-$org.log"
    done
    print_endpoints
}

status() {
    [ -f "$ENV_FILE" ] || { echo "no stack in $DIR"; exit 3; }
    local bad=0
    for name in broker bridge-MX-DIF bridge-GT-PGN webhook; do
        if alive "$name"; then echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"
        else echo "$name: stopped"; bad=1; fi
    done
    if tests/lib/pgcluster.sh status "$DIR/pg" >/dev/null 2>&1; then echo "postgresql: running"
    else echo "postgresql: stopped"; bad=1; fi
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    if alive broker; then
        echo "broker /readyz: $(curl -s --max-time 2 "http://127.0.0.1:$PUENTE_STACK_METRICS_PORT/readyz" || echo unreachable)"
    fi
    [ $bad -eq 0 ] && print_endpoints
    exit $((bad * 3))
}

down() {
    for name in bridge-MX-DIF bridge-GT-PGN broker webhook; do stop "$name"; done
    tests/lib/pgcluster.sh stop "$DIR/pg" >/dev/null 2>&1 || true
    echo "local stack in $DIR stopped (data kept; rm -rf $DIR to start over)"
}

case $cmd in
up) up ;;
status) status ;;
down) down ;;
*) die "usage: $0 up|down|status [DIR]" ;;
esac
