#!/bin/bash
# The package's default copy cap for lag 1 (a fifth of the SMs, default_transport): Qwen3-8B graphed step at 96k,
# batch 1 and 4, queries smoothed (--query-smoothing 0.05), resident and lag 1 alternated, one process each; then the
# GPU tests of the offloaded cache. Back: $OUT/steps.txt, $OUT/tests.txt.
# Usage (repo root): OUT=dir bash benchmarks/scripts/lag1_default_cap_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
step() {  # method name
  echo "[$SECONDS s] $*" | tee -a "$OUT/steps.txt"
  timeout 60 python -m asynctls_hf bench decode-step --model qwen3-8b --methods $1 --context-lengths 96k \
    --batches 1,4 --query-smoothing 0.05 --steps 24 --out "/tmp/runs/$2" 2>&1 | grep -v Warning \
    | grep "method=\|rror" | tee -a "$OUT/steps.txt"
}
step graphed resident
step graphed-offload-token-lag1 lag1_default
step graphed resident_again
step graphed-offload-token-lag1 lag1_default_again
echo "[$SECONDS s] tests" | tee -a "$OUT/steps.txt"
timeout 60 python -m pytest -q -x tests/cache/test_offloaded_gpu.py 2>&1 | tail -3 > "$OUT/tests.txt"
echo "[$SECONDS s] done" | tee -a "$OUT/steps.txt"
