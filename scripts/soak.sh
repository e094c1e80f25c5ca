#!/usr/bin/env bash
# The soak (issue "promises", item 9): the chaos sale of tests/chaos.rs in
# release, long: 1,000,000 orders over 200 SKUs through 3 allot instances
# over about 30 minutes, one SIGKILLed about every minute (30 kills by
# default) and nats-server restarted once, with every live process's
# resident memory and open file descriptors sampled every 2 s. Then the
# audit (oversold, lost, decided twice, conservation) and the chart:
# target/soak/samples.csv and target/soak/soak.png (memory and descriptors
# over time), with the peaks of the first and last fifth printed. Sizes:
# CHAOS_* variables. allot's per-order tables are bounded lower than their
# defaults (views, dedupe ids, decision horizon: ALLOT__* variables) so
# they fill in the first minutes and a flat line after that means nothing
# else grows (RELIABILITY.md, "Soak").
# Usage: ./scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
. scripts/env.sh
mkdir -p target/soak
export ALLOT__VIEWS__MAX_ORDERS=${ALLOT__VIEWS__MAX_ORDERS:-100000} \
    ALLOT__SCHEDULER__DEDUPE_MAX_IDS=${ALLOT__SCHEDULER__DEDUPE_MAX_IDS:-30000} \
    ALLOT__SCHEDULER__DEDUPE_HORIZON=${ALLOT__SCHEDULER__DEDUPE_HORIZON:-20000}
export CHAOS_ORDERS=${CHAOS_ORDERS:-1000000} CHAOS_SKUS=${CHAOS_SKUS:-200} \
    CHAOS_KILLS=${CHAOS_KILLS:-30} CHAOS_NATS_RESTARTS=${CHAOS_NATS_RESTARTS:-1} \
    CHAOS_KILL_EVERY_MS=${CHAOS_KILL_EVERY_MS:-56000} \
    CHAOS_SAMPLES=${CHAOS_SAMPLES:-target/soak/samples.csv}
cargo test --locked --release --test chaos three_instances -- --nocapture
if [ ! -x .tools/venv/bin/python ] || ! .tools/venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv .tools/venv
    .tools/venv/bin/pip install -q matplotlib
fi
.tools/venv/bin/python scripts/soak_chart.py "$CHAOS_SAMPLES" target/soak/soak.png
