#!/bin/bash
# Exact-mode offload without a side stream (2026-12-03 change): the GPU tests of the copy, the offload engine and the
# offloaded cache, then the Qwen3-8B graphed decode step, queries smoothed (--query-smoothing 0.05, a trained
# model's hit rate), batch 1 and 4: at 96k resident, offloaded by tokens exact, resident again, and offloaded with
# lag 1 last; then 48k and 64k resident and exact. Each method runs in its own process (a lag-1 cache's copy stream
# would slow every later step of its process: BENCHMARKS.md, "The side stream"). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/no_side_stream_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 170 python -m pytest -q -m gpu tests/ops/test_copy_rows.py tests/offload tests/cache/test_offloaded_gpu.py \
  2>&1 | tail -3 | tee "$OUT/tests.txt"
step() {  # method lengths name
  echo "[$SECONDS s] $1 $2" | tee -a "$OUT/steps.txt"
  timeout 150 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths $2 --batches 1,4 \
    --methods $1 --query-smoothing 0.05 --steps 24 --out "$OUT/$3" 2>&1 | grep -v Warning \
    | grep "method=\|rror" | tee -a "$OUT/steps.txt"
}
step graphed 96k graphed_96k
step graphed-offload-token 96k exact_96k
step graphed 96k graphed_96k_again
step graphed-offload-token-lag1 96k lag1_96k
step graphed 48k,64k graphed_48k_64k
step graphed-offload-token 48k,64k exact_48k_64k
echo "[$SECONDS s] done" | tee -a "$OUT/steps.txt"
