#!/usr/bin/env bash
# Builds allot and runs a simulated flash sale on the default config, then
# prints the audited result table. Extra arguments go to `allot simulate`
# (see `allot simulate --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup.rs), 1.89 or newer" >&2; exit 1; }
cargo build --locked --release --bin allot
./target/release/allot config check config/default.toml >/dev/null
exec ./target/release/allot simulate "$@"
