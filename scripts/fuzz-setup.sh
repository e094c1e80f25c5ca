#!/usr/bin/env bash
# Installs cargo-fuzz into the project-local .tools/cargo (not ~/.cargo), so
# scripts/fuzz.sh finds it without touching the user's toolchain.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$root/.tools/cargo/bin/cargo-fuzz" ]; then
    nice -n 10 cargo install cargo-fuzz --locked --root "$root/.tools/cargo"
fi
"$root/.tools/cargo/bin/cargo-fuzz" --version
