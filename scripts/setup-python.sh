#!/usr/bin/env bash
# Makes .tools/py, a Python venv with what the client examples in examples/
# need (nats-py and msgpack, pinned), for tests/examples.rs. Idempotent;
# needs only python3 with venv and pip. Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_PY=2.16.0
MSGPACK=1.2.4
venv="$PWD/.tools/py"
# One maker at a time (test binaries may run this at once).
mkdir -p .tools
exec 9>.tools/py.lock
flock 9

have() {
    [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m
assert m.version("nats-py") == "$NATS_PY" and m.version("msgpack") == "$MSGPACK"
PY
}

if ! have; then
    command -v python3 >/dev/null || { echo "python3 not found: needed for the client examples" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv" || {
        echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv) and rerun" >&2
        exit 1
    }
    PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install --quiet --disable-pip-version-check \
        --no-input "nats-py==$NATS_PY" "msgpack==$MSGPACK"
    have || { echo "$venv lacks nats-py $NATS_PY or msgpack $MSGPACK after installing" >&2; exit 1; }
fi
echo "python: $venv/bin/python (nats-py $NATS_PY, msgpack $MSGPACK)"
