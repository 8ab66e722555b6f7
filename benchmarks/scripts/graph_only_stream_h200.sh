#!/bin/bash
# Lag 1 with its copy stream used only inside captured steps (CudaStreamTransport(graph_only=True), the graphed
# default since 2026-12-03): the GPU tests of the side stream's use and of random delays, then the Qwen3-8B graphed
# decode step at 96k with lag 1, queries smoothed, batch 1 and 4, in its own process. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/graph_only_stream_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 90 python -m pytest -q -m gpu tests/cache/test_offloaded_gpu.py -k "side_stream or random_delays" 2>&1 \
  | tail -4 | tee "$OUT/tests.txt"
timeout 100 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 1,4 \
  --methods graphed-offload-token-lag1 --query-smoothing 0.05 --steps 24 --out "$OUT/lag1_96k" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee "$OUT/steps.txt"
