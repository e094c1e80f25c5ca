#!/usr/bin/env bash
# A long run of the deterministic fault simulation (tests/faults.rs), in a
# release build. See RELIABILITY.md.
# Usage: ./scripts/faults.sh [SEEDS [FIRST]]    (default: 100000 seeds from 1000;
#        CI already runs seeds 0..1000)
# A failing seed prints its replay command, e.g.
#   ALLOT_FAULT_SEED=1234 cargo test --release --test faults -- --nocapture
# Worker timeouts are uncapped by default (unknown outcomes past the retry
# budget); ALLOT_FAULT_CAPPED_TIMEOUTS=1 keeps them within it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup.rs), 1.89 or newer" >&2; exit 1; }
seeds=${1:-100000}
first=${2:-1000}
[[ $seeds =~ ^[0-9]+$ && $first =~ ^[0-9]+$ ]] || { echo "usage: $0 [SEEDS [FIRST]] (whole numbers; got '$seeds' '$first')" >&2; exit 2; }
ALLOT_FAULT_SEEDS=$seeds ALLOT_FAULT_FIRST=$first \
    exec cargo test --locked --release --test faults every_seed_keeps_every_invariant -- --nocapture
