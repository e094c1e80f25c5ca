#!/usr/bin/env bash
# Runs allot on a local NATS JetStream and puts a demo flash sale through it:
# installs a pinned nats-server if needed (scripts/setup.sh), builds allot,
# starts nats-server (store under data/nats) and `allot serve`, runs
# `allot demo` (extra arguments go to it, see `allot demo --help`) and prints
# its audited result table. On a terminal it then keeps serving until Ctrl-C;
# otherwise it stops right away. Either way it stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh >/dev/null
. scripts/env.sh
. scripts/stack.sh
cargo build --locked --release --bin allot
allot=./target/release/allot

port=${ALLOT_NATS_PORT:-$(free_port)}
http_port=${ALLOT_HTTP_PORT:-$(free_port)}
ops_port=${ALLOT_OPS_PORT:-$(free_port)}
data=${ALLOT_DATA:-data}
url="nats://127.0.0.1:$port"

trap stack_stop EXIT
trap 'exit 130' INT TERM
stack_start_nats "$data" "$port"

"$allot" serve --nats-url "$url" --http-bind "127.0.0.1:$http_port" \
    --ops-bind "127.0.0.1:$ops_port" >"$data/allot.log" 2>&1 &
stack_track $!
api="http://127.0.0.1:$http_port"
echo "nats-server on $url (store $data/nats), allot serving (log $data/allot.log)"
echo "HTTP API on $api/v1, metrics and health on http://127.0.0.1:$ops_port"
echo "demo flash sale:"
"$allot" demo --nats-url "$url" "$@"
echo
echo "the same service over HTTP:"
python3 scripts/http_demo.py "$api" "http://127.0.0.1:$ops_port"

if [ -t 0 ]; then
    echo "allot keeps serving ($api/v1, NATS $url); Ctrl-C stops it and nats-server."
    wait "${stack_pids[1]}"
fi
