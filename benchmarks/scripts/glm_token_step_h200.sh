#!/bin/bash
# The graphed decode step of a full-size GLM-4.7-Flash with the cache offloaded by tokens, exact and with a one-step
# lag, at 96k, batch 1 and 8 (random weights, bf16). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/glm_token_step_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 150 python -m asynctls_hf bench decode-step --model glm-4.7-flash --context-lengths 96k --batches 1,8 \
  --methods graphed-offload-token,graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/glm_step" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee -a "$OUT/log.txt"
