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
nats_bin=${ALLOT_NATS_SERVER:-$(command -v nats-server)}
cargo build --locked --release --bin allot
allot=./target/release/allot

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=${ALLOT_NATS_PORT:-$(free_port)}
http_port=${ALLOT_HTTP_PORT:-$(free_port)}
ops_port=${ALLOT_OPS_PORT:-$(free_port)}
data=${ALLOT_DATA:-data}
mkdir -p "$data/nats"
url="nats://127.0.0.1:$port"

pids=()
cleanup() {
    # allot first (it drains and flushes through the broker), then nats-server.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$nats_bin" -js -a 127.0.0.1 -p "$port" -sd "$data/nats" >"$data/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q "Server is ready" "$data/nats.log" && break
    sleep 0.1
done
grep -q "Server is ready" "$data/nats.log" || { cat "$data/nats.log"; echo "nats-server did not start" >&2; exit 1; }

"$allot" serve --nats-url "$url" --http-bind "127.0.0.1:$http_port" \
    --ops-bind "127.0.0.1:$ops_port" >"$data/allot.log" 2>&1 &
pids+=($!)
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
    wait "${pids[1]}"
fi
