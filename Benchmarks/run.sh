#!/usr/bin/env bash
# Runs every benchmark in release mode. Benchmarks are not tests: they measure, they do not pass or fail.
# Each figure is printed next to the SGEMM peak measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product miss
.build/release/miss bench gemm "$@"
