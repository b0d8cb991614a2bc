#!/usr/bin/env bash
# pgcluster.sh — a private, throwaway PostgreSQL 15 cluster for `make run` and `make test`.
#
#   pgcluster.sh start DIR PORT   create (if absent) and start; prints the conninfo last on stdout
#   pgcluster.sh stop DIR         fast shutdown; no error if it is not running
#   pgcluster.sh status DIR       exit 0 and print "running PORT" if up, else exit 3
#
# Layout: DIR/data (PGDATA), DIR/sock (Unix socket directory), DIR/server.log.
# The server listens only on DIR/sock and 127.0.0.1:PORT, trust authentication:
# nothing here is for production. PostgreSQL refuses to run as root, so when run
# as root every server-side command runs as the `postgres` user (runuser), which
# must then be able to traverse DIR's parents (we add o+x where it is missing).
# Everything informative goes to stderr, so `conninfo=$(pgcluster.sh start ...)` works.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DBNAME=puente

die() { echo "pgcluster: $*" >&2; exit 1; }
usage() { die "usage: $0 start DIR PORT | stop DIR | status DIR"; }

[ $# -ge 2 ] || usage
cmd=$1
dir_arg=$2
mkdir -p -- "$dir_arg"
DIR=$(cd -- "$dir_arg" && pwd -P)
DATA=$DIR/data
SOCK=$DIR/sock
LOG=$DIR/server.log

if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user (apt-get install postgresql)"
    RUNAS=(runuser -u postgres --)
    OWNER=postgres
else
    RUNAS=()
    OWNER=$(id -un)
fi

# Runs a server-side command as the cluster owner, from / so that a root-only cwd
# does not trouble it.
as_owner() { (cd / && "${RUNAS[@]}" "$@"); }

# The postmaster pid if a server really runs on DATA, else nothing. A pid file left
# by a killed server may name a pid that now belongs to another process: only a
# postgres process started with our data directory counts.
live_pid() {
    local pidfile=$DATA/postmaster.pid pid cmdline
    [ -f "$pidfile" ] || return 0
    pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    [ -r "/proc/$pid/cmdline" ] || return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    case "$cmdline" in
        *postgres*"$DATA"*) echo "$pid" ;;
    esac
}

running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true; }

remove_stale_locks() {
    if [ -f "$DATA/postmaster.pid" ]; then
        echo "pgcluster: removing stale $DATA/postmaster.pid" >&2
        rm -f -- "$DATA/postmaster.pid"
    fi
    rm -f -- "$SOCK"/.s.PGSQL.*.lock "$SOCK"/.s.PGSQL.[0-9]* 2>/dev/null || true
}

# Gives o+x to DIR and each parent that lacks it, so that `postgres` can reach DATA.
make_traversable() {
    local d=$DIR
    while [ "$d" != "/" ] && [ -n "$d" ]; do
        if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
            echo "pgcluster: chmod o+x $d (so that postgres can reach its data)" >&2
            chmod o+x -- "$d"
        fi
        d=$(dirname -- "$d")
    done
}

cmd_start() {
    local port=$1 pid
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "bad port: $port"
    [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found (apt-get install postgresql-15)"
    # Unix socket paths are limited to 107 bytes.
    [ ${#SOCK} -le 90 ] || die "socket directory path too long: $SOCK"

    mkdir -p -- "$SOCK"
    touch -- "$LOG"
    if [ "$(id -u)" -eq 0 ]; then
        make_traversable
        chown postgres:postgres -- "$SOCK" "$LOG"
        [ -d "$DATA" ] && chown postgres:postgres -- "$DATA"
    fi
    chmod 755 -- "$SOCK"

    if [ ! -f "$DATA/PG_VERSION" ]; then
        mkdir -p -- "$DATA"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres -- "$DATA"
        chmod 700 -- "$DATA"
        echo "pgcluster: initdb $DATA" >&2
        as_owner "$PGBIN/initdb" -D "$DATA" -A trust -E UTF8 --locale=C.UTF-8 -U postgres >>"$LOG" 2>&1 ||
            { tail -n 20 "$LOG" >&2; die "initdb failed (log: $LOG)"; }
    fi

    pid=$(live_pid)
    if [ -n "$pid" ]; then
        local rport
        rport=$(running_port)
        [ "$rport" = "$port" ] || die "already running on port $rport, not $port (pid $pid)"
        echo "pgcluster: already running (pid $pid)" >&2
    else
        remove_stale_locks
        echo "pgcluster: starting on $SOCK and 127.0.0.1:$port" >&2
        if ! as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-p $port -k $SOCK -c listen_addresses=127.0.0.1 -c max_wal_size=4GB -c fsync=on -c synchronous_commit=on ${PGCLUSTER_OPTS:-}" \
            start >&2; then
            tail -n 20 "$LOG" >&2
            die "pg_ctl start failed (log: $LOG)"
        fi
    fi

    local psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$port" -U postgres)
    if [ "$("${psql[@]}" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != "1" ]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE $DBNAME" >&2 ||
            [ "$("${psql[@]}" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" = "1" ] ||
            die "cannot create database $DBNAME"
    fi
    echo "host=$SOCK port=$port user=postgres dbname=$DBNAME"
}

cmd_stop() {
    local pid
    pid=$(live_pid)
    if [ -z "$pid" ]; then
        echo "pgcluster: not running ($DIR)" >&2
        return 0
    fi
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
}

cmd_status() {
    local pid
    pid=$(live_pid)
    if [ -n "$pid" ]; then
        echo "running $(running_port) (pid $pid)"
        return 0
    fi
    echo "not running"
    return 3
}

case "$cmd" in
    start) [ $# -eq 3 ] || usage; cmd_start "$3" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) usage ;;
esac
