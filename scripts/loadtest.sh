#!/usr/bin/env bash
# The goose load test (loadtest/goose) against a real allot: starts
# nats-server (temp store, free port) and `allot serve` (release, free
# ports), waits for /readyz, then runs the "http" scenario, the "nats"
# scenario and an http sell-out (a hot SKU beside 1,000 SKUs, checked sold
# out exactly afterwards) one after the other, each for LOADTEST_RUN_TIME
# with LOADTEST_USERS users, and prints goose's report. Stops only what it
# started. Exits non-zero when a threshold or the sell-out check failed.
#
#   ./scripts/loadtest.sh                         # 20 s each, 16 users
#   LOADTEST_RUN_TIME=60s LOADTEST_USERS=32 ./scripts/loadtest.sh --p95-ms 30
#
# Extra arguments go to every run (see `cargo run --release -p
# allot-loadtest -- --help`); LOADTEST_OUT (default: a temp dir) keeps the
# logs and goose's HTML reports.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh >/dev/null
. scripts/env.sh
. scripts/stack.sh
# One build for both, so allot's library is compiled once with one feature set.
cargo build --locked --release -p allot -p allot-loadtest
allot=./target/release/allot
loadtest=./target/release/allot-loadtest

users=${LOADTEST_USERS:-16}
run_time=${LOADTEST_RUN_TIME:-20s}
out=${LOADTEST_OUT:-$(mktemp -d -t allot-loadtest.XXXXXX)}

nats_port=$(free_port)
http_port=$(free_port)
ops_port=$(free_port)
nats_url="nats://127.0.0.1:$nats_port"
api="http://127.0.0.1:$http_port"

trap stack_stop EXIT
trap 'exit 130' INT TERM
stack_start_nats "$out" "$nats_port"

ALLOT__LOG__FORMAT=json ALLOT__LOG__FILTER=warn "$allot" serve --nats-url "$nats_url" \
    --http-bind "127.0.0.1:$http_port" --ops-bind "127.0.0.1:$ops_port" >"$out/allot.log" 2>&1 &
stack_track $!
for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$ops_port/readyz" >/dev/null && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$ops_port/readyz" >/dev/null || { cat "$out/allot.log"; echo "allot did not become ready" >&2; exit 1; }
echo "nats-server on $nats_url, allot on $api (logs and reports in $out)"

failed=0
for scenario in http nats; do
    echo
    echo "=== scenario $scenario: $users users, $run_time ==="
    "$loadtest" --host "$api" --nats-url "$nats_url" --scenarios "$scenario" \
        --users "$users" --increase-rate "$users" --run-time "$run_time" \
        --report-file "$out/$scenario.html" "$@" || failed=1
done
# A sell-out in a warehouse of its own (fresh partitions): half the orders
# for one hot SKU with 200 units, the rest over
# 1,000 SKUs with 2 units each; the load test then checks the hot SKU sold
# out exactly, never past it (exit 1 otherwise).
echo
echo "=== scenario http, sell-out: $users users, $run_time ==="
"$loadtest" --host "$api" --scenarios http --users "$users" --increase-rate "$users" \
    --run-time "$run_time" --report-file "$out/sellout.html" --warehouses flash --skus 1000 \
    --stock 2 --hot-share 0.5 --hot-stock 200 "$@" || failed=1
# What allot made of the orders (its views trail the log by a moment).
sleep 2
curl -fs "$api/v1/partitions?top=0&limit=0" |
    python3 -c 'import json, sys; print("allot partition totals after the runs:", json.load(sys.stdin)["totals"])' ||
    echo "could not read $api/v1/partitions" >&2
[ "$failed" = 0 ] || { echo "loadtest: a threshold failed (see above)" >&2; exit 1; }
echo "loadtest: every threshold passed"
