#!/bin/bash
# Exact-mode offload without a side stream (2026-12-03 change): the GPU tests of the copy, the offload engine and the
# offloaded cache, then the Qwen3-8B graphed decode step at 96k, queries smoothed (--query-smoothing 0.05, a trained
# model's hit rate), batch 1 and 4: resident, offloaded by tokens exact and with lag 1, each method in its own
# process (a lag-1 cache's copy stream would slow every later step of its process: BENCHMARKS.md, "The side
# stream"), then resident once more. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/no_side_stream_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 170 python -m pytest -q -m gpu tests/ops/test_copy_rows.py tests/offload tests/cache/test_offloaded_gpu.py \
  2>&1 | tail -3 | tee "$OUT/tests.txt"
for method in graphed graphed-offload-token graphed-offload-token-lag1 graphed; do
  for batch in 1 4; do
    timeout 100 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches $batch \
      --methods $method --query-smoothing 0.05 --steps 24 --out "$OUT/${method}_b$batch" 2>&1 | grep -v Warning \
      | grep "method=" | tee -a "$OUT/steps.txt"
  done
done
