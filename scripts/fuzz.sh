#!/usr/bin/env bash
# Runs each fuzz target of fuzz/ for N seconds (default 600), one after the
# other, niced so other work keeps the cores: `scripts/fuzz.sh [seconds]
# [target...]`. Needs cargo-fuzz (scripts/fuzz-setup.sh installs it into
# .tools/cargo) and libFuzzer's nightly flags, which RUSTC_BOOTSTRAP=1
# unlocks on the stable toolchain. Findings land in fuzz/artifacts/<target>/;
# the corpus grows in a scratch copy (target/fuzz-corpus/<target>), so the
# checked-in seeds in fuzz/corpus/ stay small. Each run's libFuzzer log is
# target/fuzz-logs/<target>.log; its last lines hold execs and coverage.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(order_msgpack order_json http_bodies intake_command)
"$root/scripts/fuzz-setup.sh" >/dev/null
cargo_fuzz="$root/.tools/cargo/bin/cargo-fuzz"
nice_level="${FUZZ_NICE:-10}"
cd "$root/fuzz"
# The crate is `#![forbid(unsafe_code)]`: AddressSanitizer would find
# nothing safe Rust can do, and costs ~2x in speed, so it is off.
RUSTC_BOOTSTRAP=1 nice -n "$nice_level" "$cargo_fuzz" build --sanitizer none
mkdir -p "$root/target/fuzz-logs"
failed=0
for t in "${targets[@]}"; do
    corpus="$root/target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    cp -n "$root/fuzz/corpus/$t"/* "$corpus/"
    log="$root/target/fuzz-logs/$t.log"
    echo "fuzzing $t for ${seconds}s (log: $log)"
    if ! RUSTC_BOOTSTRAP=1 nice -n "$nice_level" "$cargo_fuzz" run --sanitizer none "$t" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=70000 -print_final_stats=1 \
        >"$log" 2>&1; then
        echo "$t: FAILED, see $log and fuzz/artifacts/$t/"
        failed=1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov: .*ft:' "$log" | tail -4
done
exit "$failed"
