#!/usr/bin/env bash
# Installs the AsyncAPI parser (@asyncapi/parser), ajv (JSON Schema) and
# js-yaml, pinned, from the npm registry into .tools/asyncapi, for
# scripts/check-asyncapi.sh. Idempotent; needs node 18 or newer with npm.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=("@asyncapi/parser@3.6.6" "ajv@8.20.0" "js-yaml@4.3.2")
dir="$PWD/.tools/asyncapi"

installed() {
    local p name version
    for p in "${PACKAGES[@]}"; do
        name="${p%@*}" version="${p##*@}"
        [[ -f "$dir/node_modules/$name/package.json" ]] || return 1
        node -e "process.exit(require('$dir/node_modules/$name/package.json').version === '$version' ? 0 : 1)" || return 1
    done
}

if ! installed; then
    command -v npm >/dev/null || { echo "npm not found: install node 18 or newer" >&2; exit 1; }
    mkdir -p "$dir"
    [[ -f "$dir/package.json" ]] || echo '{"name": "allot-tools-asyncapi", "private": true}' >"$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --silent "${PACKAGES[@]}"
    installed || { echo "${PACKAGES[*]} did not all install into $dir" >&2; exit 1; }
fi
echo "asyncapi tools: ${PACKAGES[*]} in $dir"
