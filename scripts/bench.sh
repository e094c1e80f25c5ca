#!/usr/bin/env bash
# Issue 5's end-to-end benchmark in one command: allot against raw
# JetStream (per-message and batched acks), PostgreSQL (sync commit off and
# on) and Redis (AOF everysec and always), allot itself at nats-server's
# default fsync and with sync_interval always, one order per message and
# batched (--allot-batch, 64 per message by default); four scenarios, every system
# 3 times interleaved, tables and charts; and a fifth, carts (3-line carts,
# allot only, held against its single-order rate).
#
#   scripts/bench.sh            # full run: 200,000 orders (big_sale 1,000,000; carts 66,666 carts)
#   scripts/bench.sh --quick    # 20,000 orders per scenario
#   scripts/bench.sh --orders 2000 --repeats 1 --scenarios hot_sku --out /tmp/smoke
#   (any allot-bench flag: --repeats, --scenarios, --systems, --latency-orders ...)
#   ALLOT_BENCH_KEEP=1 scripts/bench.sh ...   # keep each run's nats store, nats.log and allot.log
#
# Installs what is missing (nats-server via scripts/setup.sh; postgresql and
# redis-server from Debian packages; matplotlib into .tools/venv), starts
# PostgreSQL and Redis on free loopback ports with temp data dirs, builds
# release, runs target/release/allot-bench (which starts its own
# nats-server and `allot serve` per run, and switches PostgreSQL's
# synchronous_commit per session and Redis's appendfsync per run), then
# draws the charts. Stops only the servers it started, by PID. Output in
# --out DIR (default docs/bench): results.json, results.md, machine.txt,
# throughput.png, latency.png.
set -euo pipefail

bench_args=()
out=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) bench_args+=(--orders 20000) ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --out=*) out=${1#--out=} ;;
    *) bench_args+=("$1") ;;
    esac
    shift
done
# A relative --out is relative to where the script was called from.
case "$out" in
"") ;;
/*) ;;
*) out="$PWD/$out" ;;
esac
cd "$(dirname "$0")/.."
out=${out:-docs/bench}

./scripts/setup.sh >/dev/null
. scripts/env.sh
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -x .tools/venv/bin/python ] || ! .tools/venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv .tools/venv
    .tools/venv/bin/pip install -q matplotlib
fi

cargo build --locked --release --bin allot
cargo build --locked --release -p allot-bench

# shellcheck source=scripts/stack.sh
. scripts/stack.sh
work=$(mktemp -d /tmp/allot-bench.XXXXXX)
chmod 755 "$work"
trap 'stack_stop; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# PostgreSQL refuses to run as root: as root, run it as the postgres user
# (setpriv execs, so $! is the postmaster's own PID).
as_pg=()
if [ "$(id -u)" = 0 ]; then
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
mkdir -p "$work/pg"
[ ${#as_pg[@]} -gt 0 ] && chown postgres: "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres >"$work/initdb.log"
pg_port=$(free_port)
# synchronous_commit is set per session by the bench: off (a commit returns
# before its WAL is flushed, flushed within ~200 ms, as a JetStream publish
# ack comes before the store's fsync at nats-server's default sync_interval
# and as Redis everysec) and on (flushed before the commit returns, as
# sync_interval always and Redis always).
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pg_port" -k "$work/pg" \
    -c listen_addresses=127.0.0.1 -c max_connections=200 \
    -c shared_buffers=256MB >"$work/postgres.log" 2>&1 &
stack_track $!
for _ in $(seq 100); do
    "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
    sleep 0.1
done
"$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || { cat "$work/postgres.log"; echo "postgres did not start" >&2; exit 1; }

redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
    --appendonly yes --appendfsync everysec --save '' >"$work/redis.log" 2>&1 &
stack_track $!
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || { cat "$work/redis.log"; echo "redis-server did not start" >&2; exit 1; }

mkdir -p "$out"
{
    echo "date: $(date -u '+%F %T UTC')"
    echo "cores: $(nproc) ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1))"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r)"
    echo "nats-server: $(nats-server --version) (JetStream file storage in a temp dir; default settings, sync_interval 2m, and a config with jetstream { sync_interval: always } for the allot sync-always runs)"
    echo "postgres: $("$pgbin/postgres" --version) (synchronous_commit off or on per session, shared_buffers=256MB)"
    echo "redis: $(redis-server --version | cut -d' ' -f3) (appendonly yes, appendfsync everysec or always per run)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

./target/release/allot-bench \
    --nats-server "$(command -v nats-server)" \
    --pg "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" \
    --redis "redis://127.0.0.1:$redis_port/" \
    --date "$(date -u +%F)" \
    --out "$out" \
    "${bench_args[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
.tools/venv/bin/python scripts/bench_charts.py "$out/results.json" "$out"
echo "results: $out/results.md, $out/*.png"
