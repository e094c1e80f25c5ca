#!/usr/bin/env bash
# Checks the shipped deployment files: the Prometheus config and its
# alert rules with promtool (`check config`, which also checks the rule
# files it loads; `check rules`; `test rules`, the alerts' unit tests in
# deploy/prometheus/rules.test.yml), deploy/compose.yaml resolves with
# `docker compose config` (or docker-compose v1; neither needs a Docker
# engine) and the Grafana dashboard is valid JSON. That the dashboard and
# docs/metrics.md match the exported metrics is a unit test
# (`cargo test --lib telemetry`); that every dashboard and rule expression
# evaluates on a live allot is tests/prometheus.rs.
# Usage: ./scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m json.tool deploy/grafana/dashboards/allot.json > /dev/null
echo "deploy/grafana/dashboards/allot.json: valid JSON"
./scripts/setup-prometheus.sh
command -v promtool > /dev/null || {
    echo "promtool not found (Debian: apt-get install prometheus): the Prometheus config and rules are NOT checked" >&2
    exit 1
}
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/rules.yml
(cd deploy/prometheus && promtool test rules rules.test.yml)
if ! docker compose version > /dev/null 2>&1 && ! command -v docker-compose > /dev/null \
    && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing docker-compose (Debian package; checks compose files, needs no engine)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose > /dev/null 2>&1 \
        || { apt-get update -qq > /dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose > /dev/null; }
fi
if docker compose version > /dev/null 2>&1; then
    docker compose -f deploy/compose.yaml config -q
elif command -v docker-compose > /dev/null; then
    docker-compose -f deploy/compose.yaml config -q
else
    echo "deploy/compose.yaml: NOT checked: neither 'docker compose' nor docker-compose is installed (Debian: apt-get install docker-compose)" >&2
    exit 0
fi
echo "deploy/compose.yaml: valid"
