#!/usr/bin/env bash
# Side-by-side end-to-end comparisons on one machine, alternating the two
# setups ROUNDS times each, every run on a fresh nats-server store:
#   durability  nats-server's default sync_interval (fsync every 2 minutes;
#               an append is acknowledged once in the OS page cache) against
#               `sync_interval: always` (fsync before every acknowledgement);
#   instances   one `allot serve` against two sharing the shards by lease.
# Each run is `allot demo --orders ORDERS` (its "decided orders/s end to
# end"). Prints every run and the medians with their ratio.
# Usage: ./scripts/compare.sh durability|instances [ROUNDS] [ORDERS]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: compare.sh durability|instances [ROUNDS] [ORDERS]}
rounds=${2:-3}
orders=${3:-20000}
./scripts/setup.sh >/dev/null
. scripts/env.sh
# shellcheck source=scripts/stack.sh
. scripts/stack.sh
cargo build --locked --release --bin allot >/dev/null
allot=./target/release/allot
work=$(mktemp -d)
trap 'stack_stop; rm -rf "$work"' EXIT

# run_once LABEL NATS_CONFIG INSTANCES: prints decided orders/s.
run_once() {
    local dir="$work/$1-$RANDOM" port i ops
    mkdir -p "$dir"
    printf '%s\n' "$2" >"$dir/nats.conf"
    port=$(free_port)
    stack_start_nats "$dir" "$port" -c "$dir/nats.conf" >&2
    for i in $(seq "$3"); do
        ops=$(free_port)
        "$allot" serve --nats-url "nats://127.0.0.1:$port" --http-bind 127.0.0.1:0 \
            --ops-bind "127.0.0.1:$ops" --set cluster.lease_ttl=2s >"$dir/allot-$i.log" 2>&1 &
        stack_track $!
        # Ready: this instance holds its share of the shards.
        for _ in $(seq 200); do
            python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$ops/readyz', timeout=1)" 2>/dev/null && break
            sleep 0.1
        done
    done
    # Let the leases settle on a fair split before the sale starts.
    [ "$3" -gt 1 ] && sleep 3
    "$allot" demo --nats-url "nats://127.0.0.1:$port" --orders "$orders" >"$dir/demo.txt"
    grep -q "PASS" "$dir/demo.txt" || { cat "$dir/demo.txt" >&2; exit 1; }
    awk '/decided orders\/s end to end/ {print $NF}' "$dir/demo.txt"
    stack_stop
}

case "$mode" in
durability) a=(default '# defaults: sync_interval 2m' 1); b=(always 'jetstream { sync_interval: always }' 1) ;;
instances) a=(one-instance '# defaults' 1); b=(two-instances '# defaults' 2) ;;
*) echo "unknown mode $mode: use durability or instances" >&2; exit 2 ;;
esac
declare -a ra rb
for r in $(seq "$rounds"); do
    ra+=("$(run_once "${a[@]}")")
    rb+=("$(run_once "${b[@]}")")
    echo "round $r: ${a[0]} ${ra[-1]} orders/s, ${b[0]} ${rb[-1]} orders/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${ra[@]}"); mb=$(median "${rb[@]}")
echo "median: ${a[0]} $ma orders/s, ${b[0]} $mb orders/s, ${b[0]}/${a[0]} $(python3 -c "print(round($mb/$ma, 2))")"
