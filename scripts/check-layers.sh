#!/usr/bin/env bash
# The layering rules of docs/architecture.md, checked (CI runs this):
#   - the core crate (allot-core) has no async runtime, network client,
#     HTTP server or clock in its dependency tree or its code;
#   - async-nats and axum are used only under src/adapters/;
#   - the adapters do not use each other;
#   - no Rust source file of a workspace crate is over 400 lines.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
problem() {
    echo "check-layers: $*" >&2
    fail=1
}

tree="$(cargo tree --offline -p allot-core -e normal --prefix none 2>/dev/null || cargo tree -p allot-core -e normal --prefix none)"
for crate in tokio async-nats axum hyper mio chrono time; do
    if grep -q "^$crate v" <<<"$tree"; then
        problem "allot-core depends on $crate (cargo tree -p allot-core -i $crate)"
    fi
done
if grep -rnE 'SystemTime|Instant::now|std::net|std::fs|tokio' core/src --include=*.rs; then
    problem "core/src reads a clock or does I/O (lines above)"
fi

if grep -rnE '\b(async_nats|axum)::' src --include=*.rs | grep -v '^src/adapters/'; then
    problem "async-nats or axum used outside src/adapters/ (lines above)"
fi
if grep -rn 'adapters::nats' src/adapters/http; then
    problem "the HTTP adapter uses the NATS adapter (lines above)"
fi
if grep -rn 'adapters::http' src/adapters/nats; then
    problem "the NATS adapter uses the HTTP adapter (lines above)"
fi

while read -r lines file; do
    [[ "$file" == total ]] && continue
    if ((lines > 400)); then
        problem "$file has $lines lines (at most 400)"
    fi
done < <(find src core/src bench/src loadtest/goose/src -name '*.rs' -print0 | xargs -0 wc -l)

if ((fail)); then
    exit 1
fi
echo "check-layers: core without I/O, adapters apart, every file at most 400 lines"
