#!/usr/bin/env bash
# Validates docs/asyncapi.yaml with the AsyncAPI parser and every example
# against its JSON Schema (scripts/check-asyncapi.js); installs the parser
# into .tools/asyncapi first (scripts/setup-asyncapi.sh). Run by CI;
# tests/asyncapi.rs then round-trips every example through allot's decoders.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-asyncapi.sh >/dev/null
NODE_PATH="$PWD/.tools/asyncapi/node_modules" node scripts/check-asyncapi.js "${1:-docs/asyncapi.yaml}"
