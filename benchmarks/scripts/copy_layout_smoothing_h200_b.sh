#!/bin/bash
# (1) copy_layout_h200.py again, its launches now captured in a CUDA graph (the first call timed them from Python).
# (2) The whole Qwen3-8B decode step at 96k, batch 1, with stronger query smoothing (0.1, 0.03: 0.3 gave a hit rate
# of 0.53), resident and tokens exact and lag 1.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
date +%T
timeout 200 python3 benchmarks/scripts/copy_layout_h200.py --out $OUT/copy_layout 2>&1 | tail -4
for beta in 0.1 0.03; do
  date +%T
  timeout 150 python3 -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 1 \
    --methods graphed,graphed-offload-token,graphed-offload-token-lag1 --steps 24 --warmup 4 \
    --query-smoothing $beta --out $OUT/smoothing_${beta}_b1 2>&1 | grep "^method="
done
date +%T
