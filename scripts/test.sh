#!/usr/bin/env bash
# The test suite: unit, scenario, property and simulation tests.
# Usage: ./scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup.rs), 1.85 or newer" >&2; exit 1; }
cargo test --locked "$@"
