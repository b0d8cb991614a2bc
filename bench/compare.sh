#!/usr/bin/env bash
# bench/compare.sh — what `make bench-compare` runs: the benchmark's workload through
# RabbitMQ from Debian (quorum queue, persistent 1 KiB messages, publisher confirms,
# consumer acks), on a private node: its own user (rabbitmq), loopback only, its own
# port, epmd port, RABBITMQ_MNESIA_BASE and logs under a temp dir. Nothing of the
# system's RabbitMQ (if any) is touched. Writes bench/results/<date>-<host>-rabbitmq.json
# and, if a Puente result of today exists, prints the ratios.
set -uo pipefail
cd "$(dirname "$0")/.."

why_not() { echo "bench-compare: RabbitMQ comparison skipped: $*"; exit 0; }
[ -x /usr/sbin/rabbitmq-server ] || why_not "rabbitmq-server is not installed (apt-get install -y rabbitmq-server)"
[ -f /usr/include/amqp.h ] || why_not "librabbitmq-dev is not installed (apt-get install -y librabbitmq-dev)"
id rabbitmq >/dev/null 2>&1 || why_not "no 'rabbitmq' user"
[ "$(id -u)" -eq 0 ] || why_not "must run as root to start the node as the rabbitmq user"
make --no-print-directory build/bench/rabbit >/dev/null || why_not "cannot build bench/rabbit.c"

free_port() {
    local c
    for _ in $(seq 1 50); do
        c=$((20000 + RANDOM % 20000))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$c) 2>/dev/null; then echo $c; return; fi
    done
}
amqp_port=$(free_port); epmd_port=$(free_port); dist_port=$(free_port)
tmp=$(mktemp -d /tmp/puente-rabbit.XXXXXX)
chmod 755 "$tmp"; chown rabbitmq: "$tmp"
node="puente-bench-$$@localhost"
export ERL_EPMD_PORT=$epmd_port
renv=(env HOME=/var/lib/rabbitmq ERL_EPMD_PORT=$epmd_port RABBITMQ_NODENAME=$node
      RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$amqp_port RABBITMQ_DIST_PORT=$dist_port
      RABBITMQ_MNESIA_BASE=$tmp/mnesia RABBITMQ_LOG_BASE=$tmp/log RABBITMQ_PID_FILE=$tmp/rabbit.pid
      RABBITMQ_ENABLED_PLUGINS_FILE=$tmp/enabled_plugins RABBITMQ_CONFIG_FILE=$tmp/rabbitmq)
echo "[]." >"$tmp/enabled_plugins"
printf 'listeners.tcp.default = 127.0.0.1:%s\n' "$amqp_port" >"$tmp/rabbitmq.conf"
chown rabbitmq: "$tmp"/*
as_rabbit() { (cd / && runuser -u rabbitmq -- "${renv[@]}" "$@"); }

server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        as_rabbit rabbitmqctl -n "$node" stop >/dev/null 2>&1 || kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    # The private epmd this node started (on its own port).
    as_rabbit epmd -port "$epmd_port" -kill >/dev/null 2>&1
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-compare: starting RabbitMQ node $node on 127.0.0.1:$amqp_port"
as_rabbit /usr/sbin/rabbitmq-server >"$tmp/server.out" 2>&1 &
server_pid=$!
started=0
for _ in $(seq 1 60); do
    kill -0 "$server_pid" 2>/dev/null || break
    if as_rabbit rabbitmqctl -n "$node" await_startup --timeout 5 >/dev/null 2>&1; then started=1; break; fi
    sleep 1
done
if [ $started = 0 ]; then
    tail -n 20 "$tmp/server.out"; ls -la "$tmp" "$tmp"/log 2>/dev/null; tail -n 20 "$tmp"/log/*.log 2>/dev/null
    why_not "the node did not start (log above)"
fi
beam=$(cat "$tmp/rabbit.pid" 2>/dev/null)
[[ "$beam" =~ ^[0-9]+$ ]] || beam=$(pgrep -f -- "-sname $node" | head -n1)
[[ "$beam" =~ ^[0-9]+$ ]] || beam=$(pgrep -f -- "$node" | head -n1)
version=$(as_rabbit rabbitmqctl -n "$node" version 2>/dev/null)
echo "bench-compare: RabbitMQ $version, beam.smp pid $beam"

if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then sat=10000; paced=3; else sat=40000; paced=10; fi
mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$(hostname -s)-rabbitmq.json"
{
    echo "{\"system\": \"rabbitmq $version, quorum queue, persistent, confirms, consumer acks\", \"modes\": ["
    first=1
    for spec in "throughput $sat 512 0" "rate-1000 $((1000 * paced)) 2000 1000" \
                "rate-2000 $((2000 * paced)) 4000 2000" "rate-5000 $((5000 * paced)) 10000 5000"; do
        set -- $spec
        line=$(BENCH_BROKER_PID=$beam build/bench/rabbit "$amqp_port" "$2" "$3" "$4" "$1")
        [ $first = 1 ] || echo ","
        first=0
        echo "  $line"
        echo "$line" >&2
    done
    echo "]}"
} >"$out"
echo "results: $out"

# The newest `make bench` result of this host (not a long-mode one), or BENCH_PUENTE_JSON.
puente=${BENCH_PUENTE_JSON:-$(ls -t bench/results/*-"$(hostname -s)".json 2>/dev/null |
    grep -v -- '-long' | head -n1)}
if [ -n "$puente" ] && command -v python3 >/dev/null; then
    python3 - "$puente" "$out" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
pm = {m["name"]: m for m in p["modes"]}; rm = {m["name"]: m for m in r["modes"]}
print(f"\nPuente ({sys.argv[1]}) versus RabbitMQ quorum queue, same workload:")
print(f"{'mode':<11} {'puente in/s':>11} {'rabbit in/s':>11} {'ratio':>6} | {'puente e2e':>10} {'rabbit e2e':>10} {'ratio':>6} | {'p99 rcpt ms P/R':>16} | {'p99 dlv ms P/R':>16}")
for name in ["throughput", "rate-1000", "rate-2000", "rate-5000"]:
    if name not in pm or name not in rm: continue
    a, b = pm[name], rm[name]
    print(f"{name:<11} {a['ingest_per_s']:>11.0f} {b['ingest_per_s']:>11.0f} {a['ingest_per_s']/max(b['ingest_per_s'],1):>6.2f} | "
          f"{a['e2e_per_s']:>10.0f} {b['e2e_per_s']:>10.0f} {a['e2e_per_s']/max(b['e2e_per_s'],1):>6.2f} | "
          f"{a['receipt_latency_us']['p99']/1000:>7.2f}/{b['confirm_latency_us']['p99']/1000:<8.2f} | "
          f"{a['delivery_latency_us']['p99']/1000:>7.2f}/{b['delivery_latency_us']['p99']/1000:<8.2f}")
PY
fi
