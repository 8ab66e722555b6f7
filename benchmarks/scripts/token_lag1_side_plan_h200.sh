#!/bin/bash
# Offload by tokens with prefetch_lag=1, its plan moved to the copy stream (2026-11-29: with the plan on the compute
# stream the lag-1 step was 16.28 ms against 9.76 resident at 48k batch 1; the profile put 1.43 ms in the plan
# kernel, 0.95 ms in the sort of the selected positions and 0.36 ms in forgetting stale ids, all on the compute
# stream). GPU tests of the offload engine, the offloaded cache and the graphs; the Qwen3-8B graphed decode step
# resident / tokens lag 1 at 48k and 96k, batch 1 and 4, and tokens lag 1 at 96k batch 8; the kernel profile of
# tokens lag 1 at 48k batch 1. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/token_lag1_side_plan_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 110 python -m pytest -q -m gpu tests/offload tests/cache/test_offloaded_gpu.py tests/test_graphs.py \
  -k "token or lag or delays or transport" -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 130 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 48k,96k --batches 1,4 \
  --methods graphed,graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee "$OUT/qwen_log.txt"
timeout 80 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 8 \
  --methods graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/qwen_b8" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee -a "$OUT/qwen_log.txt"
timeout 50 python -m asynctls_hf bench profile-step --model qwen3-8b --context 49152 --batch 1 \
  --method graphed-offload-token-lag1 --steps 5 --top 25 2>&1 | grep -v Warning > "$OUT/profile_token_lag1_48k_b1.txt"
tail -1 "$OUT/profile_token_lag1_48k_b1.txt"
