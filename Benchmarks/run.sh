#!/usr/bin/env bash
# Runs every benchmark in release mode. Benchmarks are not tests: they measure, they do not pass or fail.
# Each figure is printed next to the SGEMM peak measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product miss
B=.build/release/miss
$B bench gemm
$B bench topk
$B bench topk --length 2000
$B bench topk --length 1600 --distinct 0.12   # synthetic rows of a SampleData history's median length, 12 % distinct scores
$B bench topk --data SampleData/world.missdata  # the rows training computes on SampleData, per GSU
$B bench relevance                 # one level's GSU products: RelevanceKernel vs one OpenBLAS GEMM
$B bench relevance --length 2000
$B bench tree
$B bench train     # training samples/s against its FLOP bound (SampleData)
# The same on ml-latest-small (histories that never repeat an item: the tighter ratio), imported into a temporary file.
ML=../shared/datasets/ml-latest-small
if [ -d "$ML" ]; then
    T=$(mktemp -d)
    $B import movielens "$ML" --out "$T/ml.missdata" > /dev/null
    $B bench train --data "$T/ml.missdata"
    rm -rf "$T"
fi
$B bench beam --mm-length 2000
$B bench beam --mm-length 4000
$B bench explore   # SampleData's bundle (trained on first use)
