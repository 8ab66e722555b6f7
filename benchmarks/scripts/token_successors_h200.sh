#!/bin/bash
# Offload by tokens with prefetch_lag=1 now also copies, for the next step, the token after each selected one
# (prefetch_successors=1, the default; on the GLM probe lag 1 without it answered 0 of 20 needle prompts right).
# GPU tests of the offload engine, the offloaded cache and the graphs; the Qwen3-8B graphed decode step resident /
# tokens lag 1 at 48k and 96k, batch 1 and 4, and 96k batch 8; then GLM-4.7-Flash's graphed step offloaded by
# tokens, exact and lag 1, at 96k, batch 1 and 8. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/token_successors_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 100 python -m pytest -q -m gpu tests/offload tests/cache/test_offloaded_gpu.py tests/test_graphs.py \
  -k "token or lag or delays or transport" -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 130 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 48k,96k --batches 1,4 \
  --methods graphed,graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee "$OUT/log.txt"
timeout 60 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 8 \
  --methods graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/qwen_b8" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee -a "$OUT/log.txt"
OUT=$OUT bash benchmarks/scripts/glm_token_step_h200.sh
