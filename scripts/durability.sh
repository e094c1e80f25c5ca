#!/usr/bin/env bash
# Measures what nats-server's fsync setting costs allot: the same demo sale
# (allot demo, 20,000 orders by default) through a fresh nats-server with
# the default sync_interval (fsync every 2 minutes; a write is acknowledged
# once in the OS page cache, replicas give durability) and with
# `sync_interval: always` (fsync before every acknowledgement), alternating,
# ROUNDS times each. Prints decided orders/s per run and the median ratio.
# Usage: ./scripts/durability.sh [ROUNDS] [ORDERS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
orders=${2:-20000}
./scripts/setup.sh >/dev/null
. scripts/env.sh
cargo build --locked --release --bin allot >/dev/null
allot=./target/release/allot
work=$(mktemp -d)
pids=()
cleanup() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    pids=()
}
trap 'cleanup; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_once() { # $1: label, $2: nats config text
    local dir="$work/$1-$RANDOM" port http ops
    mkdir -p "$dir/store"
    printf '%s\n' "$2" >"$dir/nats.conf"
    port=$(free_port); http=$(free_port); ops=$(free_port)
    nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/store" -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q "Server is ready" "$dir/nats.log" && break; sleep 0.1; done
    "$allot" serve --nats-url "nats://127.0.0.1:$port" --http-bind "127.0.0.1:$http" \
        --ops-bind "127.0.0.1:$ops" >"$dir/allot.log" 2>&1 &
    pids+=($!)
    "$allot" demo --nats-url "nats://127.0.0.1:$port" --orders "$orders" >"$dir/demo.txt"
    awk '/decided orders\/s end to end/ {print $NF}' "$dir/demo.txt"
    cleanup
}

declare -a def alw
for r in $(seq "$rounds"); do
    def+=("$(run_once default '# defaults: sync_interval 2m')")
    alw+=("$(run_once always 'jetstream { sync_interval: always }')")
    echo "round $r: default ${def[-1]} orders/s, sync_interval always ${alw[-1]} orders/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${def[@]}"); ma=$(median "${alw[@]}")
echo "median: default $md orders/s, always $ma orders/s, always/default $(python3 -c "print(round($ma/$md, 2))")"
