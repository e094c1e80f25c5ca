# Source me (`. scripts/env.sh`): puts the project's tools (.tools/bin, filled
# by scripts/setup.sh) first on PATH.
PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/bin:$PATH"
export PATH
