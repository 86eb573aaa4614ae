#!/usr/bin/env bash
# The README's first command: set up what is missing, build, and open MISS Explorer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product miss
exec .build/release/miss "$@"
