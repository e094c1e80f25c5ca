#!/usr/bin/env bash
# The test suite: unit, scenario, property and simulation tests, and the
# integration tests against a real nats-server (installed by setup.sh).
# Usage: ./scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup.rs), 1.89 or newer" >&2; exit 1; }
./scripts/setup.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh
cargo test --locked "$@"
