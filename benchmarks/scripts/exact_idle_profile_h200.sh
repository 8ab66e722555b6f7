#!/bin/bash
# Where the offloaded exact step's extra time goes at a trained model's hit rate: the kernel profiles (with the GPU's
# idle time before each kernel) of the Qwen3-8B graphed step at 96k batch 1, queries smoothed (--query-smoothing
# 0.05, hit rate about 0.88): resident, offloaded by tokens exact, and lag 1. GPU tests of the copy, the offload
# engine (16-warp circular plan), the offloaded cache and the transfer bench first. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/exact_idle_profile_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 170 python -m pytest -q -m gpu tests/ops/test_copy_rows.py tests/offload tests/cache/test_offloaded_gpu.py \
  2>&1 | tail -3 | tee "$OUT/tests.txt"
for method in graphed graphed-offload-token graphed-offload-token-lag1; do
  timeout 110 python -m asynctls_hf bench profile-step --model qwen3-8b --context 98304 --batch 1 \
    --method $method --query-smoothing 0.05 --steps 10 --top 40 2>&1 | grep -v Warning > "$OUT/profile_$method.txt"
  tail -2 "$OUT/profile_$method.txt"
done
