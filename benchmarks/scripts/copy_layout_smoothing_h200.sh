#!/bin/bash
# (1) Single-token copy throughput by copy-list and store layout (copy_layout_h200.py: sparse list as now, compact
# list, keys and values interleaved in the store, the same with MADV_HUGEPAGE, raw contiguous copy), batch 1 and 4.
# (2) The whole Qwen3-8B decode step at 96k, batch 1, queries smoothed (--query-smoothing 0.3) so that the
# offloaded cache's hit rate is a trained model's: resident, tokens exact, tokens lag 1.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
date +%T
timeout 200 python3 benchmarks/scripts/copy_layout_h200.py --out $OUT/copy_layout 2>&1 | tail -4
date +%T
timeout 300 python3 -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 1 \
  --methods graphed,graphed-offload-token,graphed-offload-token-lag1 --steps 24 --warmup 4 --query-smoothing 0.3 \
  --out $OUT/decode_step_smoothed_b1 2>&1 | grep -v Warning | tail -8
date +%T
