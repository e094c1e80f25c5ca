#!/usr/bin/env bash
# Makes sure `prometheus` and `promtool` are on PATH, for
# scripts/check-deploy.sh (promtool check config / rules / test rules) and
# tests/prometheus.rs (a real Prometheus scraping a real allot). Idempotent:
# does nothing when both are there. Otherwise installs Debian's
# `prometheus` package (it ships both) with apt-get, when this is a Debian
# or Ubuntu machine and we are root; the package's service is not started
# (nothing here runs it but the test, on a free loopback port).
#
# Never fails: when it cannot install, it says why on stderr and exits 0,
# and then check-deploy.sh fails and tests/prometheus.rs reports itself
# skipped (or fails under CI=true).
# Usage: ./scripts/setup-prometheus.sh
set -uo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
why=""
if ! command -v apt-get >/dev/null; then
    why="no apt-get on this machine"
elif [ "$(id -u)" != 0 ]; then
    why="not root (run: sudo apt-get install prometheus)"
else
    echo "installing prometheus and promtool (Debian package prometheus)" >&2
    # policy-rc.d-less containers would start the daemon: stop that by
    # installing with invoke-rc.d answering "no start" (exit 101).
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    install_pkg() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1
    }
    install_pkg || { apt-get update -qq >/dev/null 2>&1 && install_pkg; } || why="apt-get install prometheus failed"
    [ -n "$made_policy" ] && rm -f "$policy"
fi
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    echo "prometheus: $(prometheus --version 2>&1 | head -n 1)" >&2
    exit 0
fi
echo "prometheus/promtool not installed: ${why:-the package did not provide them}" >&2
exit 0
