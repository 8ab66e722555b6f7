#!/bin/bash
# The offload issue's H200 run: GPU tests of the touched packages, then the transfer and decode-step benchmarks.
# Usage (repo root): OUT=dir bash benchmarks/scripts/offload_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
free -g | head -2
timeout 200 python -m pytest -q -m gpu tests/cache tests/offload tests/patches tests/ops/test_block_summaries.py \
  > "$OUT/gpu_tests.log" 2>&1; tail -25 "$OUT/gpu_tests.log"
timeout 90 python -m asynctls_hf bench offload-transfer --batches 1,4 --misses 8,32,64 --reps 10 \
  --out "$OUT/transfer" 2>&1 | tail -14
for drift in 0.1 0.3; do
  timeout 120 python -m asynctls_hf bench offload-decode --attention gqa --batch 2 --drift $drift --steps 32 \
    --out "$OUT/decode_drift$drift" 2>&1 | tail -12
done
