#!/usr/bin/env bash
# The full chaos run (tests/chaos.rs) in release: a sale of 200,000 orders
# over 1,000 SKUs through 3 allot instances, one SIGKILLed every 3 s (20
# kills) and nats-server restarted 3 times; then the 3-node R3 cluster test.
# It prints the audit (oversold, lost, decided twice, conservation),
# redeliveries, conflicts and recovery times. Sizes: CHAOS_* variables.
# Usage: ./scripts/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
. scripts/env.sh
export CHAOS_ORDERS=${CHAOS_ORDERS:-200000} CHAOS_SKUS=${CHAOS_SKUS:-1000} \
    CHAOS_KILLS=${CHAOS_KILLS:-20} CHAOS_NATS_RESTARTS=${CHAOS_NATS_RESTARTS:-3} \
    CHAOS_KILL_EVERY_MS=${CHAOS_KILL_EVERY_MS:-3000} CHAOS_CLUSTER_ORDERS=${CHAOS_CLUSTER_ORDERS:-20000}
cargo test --locked --release --test chaos -- --nocapture --test-threads 1
