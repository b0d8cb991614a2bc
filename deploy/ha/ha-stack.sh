#!/usr/bin/env bash
# deploy/ha/ha-stack.sh — a highly available PostgreSQL for Puente on ONE machine:
# a three-member etcd cluster and three PostgreSQL 15 nodes under Patroni with
# synchronous replication (docs/ha.md explains it, and what changes on three machines).
#
#   ha-stack.sh up DIR        start what is not running (idempotent), wait for a primary
#                             with a synchronous standby, create database `puente`, start
#                             HA_BROKERS (default 2, at most 4; 0 = none) puente-brokers
#                             on it (issue 9: several brokers over one database), and
#                             print the libpq multi-host connection string last on stdout
#   ha-stack.sh down DIR      stop the brokers, Patroni (which stops PostgreSQL) and etcd;
#                             data kept
#   ha-stack.sh status DIR    print every member; exit 0 when all six processes (and every
#                             broker started here) run and a primary with a synchronous
#                             standby exists, else 3
#   ha-stack.sh brokers DIR   print the endpoints of the running brokers, one per line
#   ha-stack.sh failover DIR  lose the primary's machine: SIGKILL its Patroni, its
#                             postmaster and the postmaster's children; wait for another
#                             node to be promoted and print its name and the time taken.
#                             `up` afterwards restarts the lost node, which rejoins as a standby
#   ha-stack.sh conninfo DIR  print the connection string
#   ha-stack.sh leader DIR    print the primary's node name (pg1..pg3), exit 3 if none
#
# Layout under DIR: stack.env (ports, kept across runs), etcdN/{data,etcd.log,pid},
# pgN/{patroni.yml,data,sock,patroni.log,pid}, keys/ (broker and operator keys, made with
# `puente keygen` if missing), brokerN/{broker.log,pid}. Ports: HA_PORT_BASE (default: the
# first free block of 20 from 56200) + 1..3 etcd clients, 4..6 etcd peers, 7..9 PostgreSQL,
# 10..12 Patroni REST APIs, 13..16 brokers (ZeroMQ), 17..20 their /metrics, on 127.0.0.1.
# The brokers are $BUILD/puente-broker and $BUILD/puente of this tree (BUILD=build), instance
# ids broker1, broker2, ..., all with the one broker key set in DIR/keys (docs/ha.md).
#
# Loopback demo only: etcd and the REST API speak plain HTTP and PostgreSQL trusts
# 127.0.0.1. PostgreSQL refuses to run as root, so when we are root Patroni (and so
# PostgreSQL) runs as the `postgres` user; etcd runs as whoever runs this script.
# Everything informative goes to stderr, so `conninfo=$(ha-stack.sh up DIR | tail -n1)` works.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "$0")" && pwd -P)
REPO=$(cd -- "$HERE/../.." && pwd -P)
case "${BUILD:-build}" in /*) BUILD_DIR=${BUILD} ;; *) BUILD_DIR=$REPO/${BUILD:-build} ;; esac
BROKER_BIN=${PUENTE_BROKER_BIN:-$BUILD_DIR/puente-broker}
CLI_BIN=${PUENTE_CLI_BIN:-$BUILD_DIR/puente}
HA_BROKERS=${HA_BROKERS:-2}
[[ "$HA_BROKERS" =~ ^[0-4]$ ]] || { echo "ha-stack: HA_BROKERS must be 0..4" >&2; exit 1; }
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SCOPE=${HA_SCOPE:-puente-ha}
DBNAME=puente
NODES=(1 2 3)

die() { echo "ha-stack: $*" >&2; exit 1; }
say() { echo "ha-stack: $*" >&2; }
usage() { die "usage: $0 up|down|status|failover|conninfo|leader|brokers DIR"; }

[ $# -eq 2 ] || usage
cmd=$1
mkdir -p -- "$2"
DIR=$(cd -- "$2" && pwd -P)

if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user (apt-get install postgresql)"
    PGUSER_OS=postgres
    AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
else
    PGUSER_OS=$(id -un)
    AS_PG=()
fi

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found (make deps-ha)"; }

# --- ports ---------------------------------------------------------------------------

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

load_ports() {
    if [ -f "$DIR/stack.env" ]; then
        # shellcheck disable=SC1091
        . "$DIR/stack.env"
    else
        local base=${HA_PORT_BASE:-}
        if [ -z "$base" ]; then
            base=56200
            while :; do
                local ok=1 i
                for i in $(seq 1 20); do port_free $((base + i)) || { ok=0; break; }; done
                [ $ok -eq 1 ] && break
                base=$((base + 20))
                [ $base -lt 65000 ] || die "no free block of ports"
            done
        fi
        HA_PORT_BASE=$base
        echo "HA_PORT_BASE=$base" >"$DIR/stack.env"
    fi
    local n
    for n in "${NODES[@]}"; do
        eval "ETCD_CLIENT_$n=$((HA_PORT_BASE + n))"
        eval "ETCD_PEER_$n=$((HA_PORT_BASE + 3 + n))"
        eval "PG_PORT_$n=$((HA_PORT_BASE + 6 + n))"
        eval "REST_PORT_$n=$((HA_PORT_BASE + 9 + n))"
    done
    for n in 1 2 3 4; do
        eval "BROKER_PORT_$n=$((HA_PORT_BASE + 12 + n))"
        eval "BROKER_METRICS_$n=$((HA_PORT_BASE + 16 + n))"
    done
    ETCD_HOSTS="127.0.0.1:$ETCD_CLIENT_1,127.0.0.1:$ETCD_CLIENT_2,127.0.0.1:$ETCD_CLIENT_3"
    ETCD_ENDPOINTS="http://127.0.0.1:$ETCD_CLIENT_1,http://127.0.0.1:$ETCD_CLIENT_2,http://127.0.0.1:$ETCD_CLIENT_3"
}
v() { eval "echo \"\$$1\""; }

conninfo() {
    echo "host=127.0.0.1,127.0.0.1,127.0.0.1 port=$PG_PORT_1,$PG_PORT_2,$PG_PORT_3 user=postgres dbname=$DBNAME target_session_attrs=read-write connect_timeout=2"
}

# --- processes -----------------------------------------------------------------------

# The pid in FILE if that process still runs and its command line holds PATTERN.
live() {
    local file=$1 pattern=$2 pid cmdline
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    [ -r "/proc/$pid/cmdline" ] || return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    case "$cmdline" in *"$pattern"*) echo "$pid" ;; esac
}
etcd_pid() { live "$DIR/etcd$1/pid" "$DIR/etcd$1/data"; }
patroni_pid() { live "$DIR/pg$1/pid" "$DIR/pg$1/patroni.yml"; }
postmaster_pid() {
    local f=$DIR/pg$1/data/postmaster.pid pid cmdline
    [ -f "$f" ] || return 0
    pid=$(head -n 1 "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    case "$cmdline" in *postgres*"$DIR/pg$1/data"*) echo "$pid" ;; esac
}

broker_pid() { live "$DIR/broker$1/pid" "--keys $DIR/keys --instance-id broker$1 "; }

# --- brokers (issue 9: several brokers over one database) ------------------------------

start_broker() {
    local n=$1 d=$DIR/broker$1
    [ -z "$(broker_pid "$n")" ] || return 0
    mkdir -p -- "$d"
    say "broker$n: tcp://127.0.0.1:$(v BROKER_PORT_$n), metrics 127.0.0.1:$(v BROKER_METRICS_$n)"
    setsid "$BROKER_BIN" --endpoint "tcp://127.0.0.1:$(v BROKER_PORT_$n)" --db "$(conninfo)" \
        --keys "$DIR/keys" --instance-id "broker$n" --sql "$REPO/broker/sql" \
        --metrics-listen "127.0.0.1:$(v BROKER_METRICS_$n)" </dev/null >>"$d/broker.log" 2>&1 &
    echo $! >"$d/pid"
}

start_brokers() {
    [ "$HA_BROKERS" -gt 0 ] || return 0
    [ -x "$BROKER_BIN" ] && [ -x "$CLI_BIN" ] || die "$BROKER_BIN or $CLI_BIN missing (make; or HA_BROKERS=0)"
    local n org
    for org in broker operator; do
        "$CLI_BIN" keygen --org "$org" --keys "$DIR/keys" --if-missing >/dev/null ||
            die "cannot make the $org keys in $DIR/keys"
    done
    for n in $(seq 1 "$HA_BROKERS"); do start_broker "$n"; done
    for n in $(seq 1 "$HA_BROKERS"); do
        local deadline=$((SECONDS + 90))
        until curl -fs -o /dev/null -m 1 "http://127.0.0.1:$(v BROKER_METRICS_$n)/readyz" 2>/dev/null; do
            [ -n "$(broker_pid "$n")" ] || { tail -n 20 "$DIR/broker$n/broker.log" >&2; die "broker$n exited"; }
            [ $SECONDS -lt $deadline ] || die "broker$n not ready after 90 s ($DIR/broker$n/broker.log)"
            sleep 0.3
        done
    done
    say "brokers ready: $(cmd_brokers | tr '\n' ' ')"
}

cmd_brokers() {
    local n
    for n in 1 2 3 4; do
        [ -n "$(broker_pid "$n")" ] && echo "tcp://127.0.0.1:$(v BROKER_PORT_$n)"
    done
    return 0
}

# Gives o+x to DIR and each parent that lacks it, so that `postgres` can reach its data.
make_traversable() {
    local d=$DIR
    while [ "$d" != "/" ] && [ -n "$d" ]; do
        if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
            say "chmod o+x $d (so that postgres can reach its data)"
            chmod o+x -- "$d"
        fi
        d=$(dirname -- "$d")
    done
}

start_etcd() {
    local n=$1 d=$DIR/etcd$1 cluster="" m
    [ -z "$(etcd_pid "$n")" ] || return 0
    for m in "${NODES[@]}"; do
        cluster+="${cluster:+,}etcd$m=http://127.0.0.1:$(v ETCD_PEER_$m)"
    done
    mkdir -p -- "$d/data"
    chmod 700 -- "$d/data"
    say "etcd$n: client 127.0.0.1:$(v ETCD_CLIENT_$n), peer 127.0.0.1:$(v ETCD_PEER_$n)"
    # --initial-* flags only matter the first time; later starts read the member from data.
    setsid etcd --name "etcd$n" --data-dir "$d/data" \
        --listen-client-urls "http://127.0.0.1:$(v ETCD_CLIENT_$n)" \
        --advertise-client-urls "http://127.0.0.1:$(v ETCD_CLIENT_$n)" \
        --listen-peer-urls "http://127.0.0.1:$(v ETCD_PEER_$n)" \
        --initial-advertise-peer-urls "http://127.0.0.1:$(v ETCD_PEER_$n)" \
        --initial-cluster "$cluster" --initial-cluster-token "$SCOPE" \
        --initial-cluster-state new \
        --heartbeat-interval 100 --election-timeout 1000 \
        </dev/null >>"$d/etcd.log" 2>&1 &
    echo $! >"$d/pid"
}

write_patroni_yml() {
    local n=$1 d=$DIR/pg$1
    sed -e "s|@NAME@|pg$n|g" -e "s|@SCOPE@|$SCOPE|g" -e "s|@NODEDIR@|$d|g" \
        -e "s|@REST_PORT@|$(v REST_PORT_$n)|g" -e "s|@PG_PORT@|$(v PG_PORT_$n)|g" \
        -e "s|@ETCD_HOSTS@|$ETCD_HOSTS|g" -e "s|@PGBIN@|$PGBIN|g" \
        "$HERE/patroni.yml.in" >"$d/patroni.yml"
}

start_patroni() {
    local n=$1 d=$DIR/pg$1
    [ -z "$(patroni_pid "$n")" ] || return 0
    mkdir -p -- "$d/sock"
    write_patroni_yml "$n"
    touch -- "$d/patroni.log"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PGUSER_OS:$PGUSER_OS" -- "$d" "$d/sock" "$d/patroni.log" "$d/patroni.yml"
        [ -d "$d/data" ] && chown "$PGUSER_OS:$PGUSER_OS" -- "$d/data"
    fi
    chmod 700 -- "$d"
    say "pg$n: PostgreSQL 127.0.0.1:$(v PG_PORT_$n), Patroni REST 127.0.0.1:$(v REST_PORT_$n)"
    # The subshell records its own pid and becomes Patroni (setsid and setpriv exec).
    (cd / && echo "$BASHPID" >"$d/pid" &&
        HOME=$d exec setsid "${AS_PG[@]}" patroni "$d/patroni.yml" </dev/null >>"$d/patroni.log" 2>&1) &
    local i
    for i in $(seq 1 50); do [ -n "$(patroni_pid "$n")" ] && break; sleep 0.1; done
}

# Name of the node whose REST API answers 200 on /primary, or nothing.
leader() {
    local n
    for n in "${NODES[@]}"; do
        if curl -fs -o /dev/null -m 1 "http://127.0.0.1:$(v REST_PORT_$n)/primary" 2>/dev/null; then
            echo "$n"
            return 0
        fi
    done
}

psql_at() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(v PG_PORT_$1)" -U postgres "${@:2}"; }

# Number of synchronous standbys the primary on node n reports.
sync_count() { psql_at "$1" -d postgres -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync','quorum')" 2>/dev/null || echo 0; }

wait_ready() {
    local deadline=$((SECONDS + ${1:-120})) l
    while [ $SECONDS -lt $deadline ]; do
        l=$(leader)
        if [ -n "$l" ] && [ "$(sync_count "$l")" -ge 1 ]; then
            echo "$l"
            return 0
        fi
        sleep 0.5
    done
    return 1
}

cmd_up() {
    need etcd; need etcdctl; need patroni; need curl; need psql
    [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found (apt-get install postgresql-15)"
    [ ${#DIR} -le 80 ] || die "directory path too long for Unix sockets: $DIR"
    [ "$(id -u)" -eq 0 ] && make_traversable
    local n
    for n in "${NODES[@]}"; do start_etcd "$n"; done
    local deadline=$((SECONDS + 60))
    until ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" endpoint health >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { tail -n 20 "$DIR"/etcd*/etcd.log >&2; die "etcd did not become healthy"; }
        sleep 0.3
    done
    say "etcd healthy ($ETCD_ENDPOINTS)"
    for n in "${NODES[@]}"; do start_patroni "$n"; done
    local l
    if ! l=$(wait_ready 180); then
        tail -n 30 "$DIR"/pg*/patroni.log >&2
        die "no primary with a synchronous standby after 180 s (logs: $DIR/pg*/patroni.log)"
    fi
    say "primary: pg$l, synchronous standbys: $(sync_count "$l")"
    if [ "$(psql_at "$l" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != 1 ]; then
        psql_at "$l" -d postgres -c "CREATE DATABASE $DBNAME" >&2
    fi
    start_brokers
    conninfo
}

cmd_down() {
    local n pid pids=()
    for n in 1 2 3 4; do
        pid=$(broker_pid "$n")
        [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); }
    done
    for pid in "${pids[@]}"; do
        local until=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.2; done
    done
    pids=()
    for n in "${NODES[@]}"; do
        pid=$(patroni_pid "$n")
        [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); }
    done
    local deadline=$((SECONDS + 60))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    done
    # A postmaster whose Patroni was killed (failover) is stopped directly.
    for n in "${NODES[@]}"; do
        pid=$(postmaster_pid "$n")
        if [ -n "$pid" ]; then
            (cd / && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg$n/data" -m fast -w -t 60 stop >&2) || true
        fi
    done
    pids=()
    for n in "${NODES[@]}"; do
        pid=$(etcd_pid "$n")
        [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); }
    done
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    done
    say "stopped ($DIR)"
}

cmd_status() {
    local n all=0 l
    for n in "${NODES[@]}"; do
        local e p
        e=$(etcd_pid "$n"); p=$(patroni_pid "$n")
        printf 'etcd%s    %-8s pid %-7s client 127.0.0.1:%s\n' "$n" "$([ -n "$e" ] && echo running || echo stopped)" "${e:--}" "$(v ETCD_CLIENT_$n)"
        [ -n "$e" ] || all=3
    done
    for n in "${NODES[@]}"; do
        local p role
        p=$(patroni_pid "$n")
        role=$(curl -fs -m 1 "http://127.0.0.1:$(v REST_PORT_$n)/patroni" 2>/dev/null |
            sed -n 's/.*"role": *"\([a-z_]*\)".*/\1/p' || true)
        printf 'pg%s      %-8s pid %-7s postgres 127.0.0.1:%s  role %s\n' "$n" "$([ -n "$p" ] && echo running || echo stopped)" "${p:--}" "$(v PG_PORT_$n)" "${role:-unknown}"
        [ -n "$p" ] || all=3
    done
    for n in 1 2 3 4; do
        [ -f "$DIR/broker$n/pid" ] || continue
        local b
        b=$(broker_pid "$n")
        printf 'broker%s  %-8s pid %-7s tcp://127.0.0.1:%s  ready %s\n' "$n" "$([ -n "$b" ] && echo running || echo stopped)" "${b:--}" "$(v BROKER_PORT_$n)" \
            "$(curl -s -m 1 "http://127.0.0.1:$(v BROKER_METRICS_$n)/readyz" 2>/dev/null | head -c 40 || true)"
        [ -n "$b" ] || all=3
    done
    l=$(leader)
    if [ -n "$l" ]; then
        echo "primary pg$l, synchronous standbys $(sync_count "$l")"
        [ "$(sync_count "$l")" -ge 1 ] || all=3
    else
        echo "no primary"
        all=3
    fi
    return $all
}

cmd_failover() {
    local l pm pat t0 nl
    l=$(leader)
    [ -n "$l" ] || die "no primary to lose"
    pat=$(patroni_pid "$l")
    pm=$(postmaster_pid "$l")
    t0=$(date +%s.%N)
    say "losing pg$l: SIGKILL Patroni ${pat:-none}, postmaster ${pm:-none} and its children"
    [ -n "$pat" ] && kill -KILL "$pat" 2>/dev/null || true
    if [ -n "$pm" ]; then
        local kids
        kids=$(ps -o pid= --ppid "$pm" 2>/dev/null || true)
        kill -KILL "$pm" 2>/dev/null || true
        # shellcheck disable=SC2086
        [ -n "$kids" ] && kill -KILL $kids 2>/dev/null || true
    fi
    local deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        nl=$(leader)
        if [ -n "$nl" ] && [ "$nl" != "$l" ]; then
            printf 'ha-stack: pg%s promoted %.1f s after pg%s was lost\n' "$nl" \
                "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$l" >&2
            echo "pg$nl"
            return 0
        fi
        sleep 0.2
    done
    die "no new primary within 120 s"
}

load_ports
case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    failover) cmd_failover ;;
    conninfo) conninfo ;;
    leader) l=$(leader); [ -n "$l" ] || exit 3; echo "pg$l" ;;
    brokers) cmd_brokers ;;
    *) usage ;;
esac
