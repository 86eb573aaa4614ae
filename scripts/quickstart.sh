#!/usr/bin/env bash
# The README's first command: set up what is missing, build, and open MISS Explorer on SampleData
# (`miss explore` trains SampleData's bundle first, with progress bars, if it is not there yet).
# With arguments it runs `miss <arguments>` instead, e.g. `bash scripts/quickstart.sh bench gemm`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product miss
if [ "$#" -eq 0 ]; then
    exec .build/release/miss explore
fi
exec .build/release/miss "$@"
