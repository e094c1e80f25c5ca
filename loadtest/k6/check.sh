#!/usr/bin/env bash
# Checks the k6 scripts without k6 (which this machine cannot install):
# node parses every script here as an ES module (package.json says so; node
# --check reads syntax only, so the k6 imports need not resolve), and runs
# the MessagePack encoder's tests against the README's bytes.
# node is part of the machine image (nodejs 20); when it is missing this
# fails rather than install it: `apt-get install nodejs` brings it.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || {
    echo "loadtest/k6/check.sh: node not found; install Node.js (apt-get install nodejs) to check the k6 scripts" >&2
    exit 1
}
for script in *.js; do
    node --check "$script"
done
echo "k6 scripts parse: $(ls *.js | tr '\n' ' ')"
node --test msgpack.test.js
