#!/bin/bash
# Where the exact token-offload step's time goes now (plan and sort on the copy stream, no stale-id sweep): the
# kernel profile of the Qwen3-8B graphed step offloaded by tokens, exact, at 48k batch 1; then the graphed step at
# 96k batch 8 offloaded by tokens, exact and with lag 1 (with successors). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/exact_profile_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 70 python -m asynctls_hf bench profile-step --model qwen3-8b --context 49152 --batch 1 \
  --method graphed-offload-token --steps 5 --top 25 2>&1 | grep -v Warning > "$OUT/profile_token_exact_48k_b1.txt"
tail -1 "$OUT/profile_token_exact_48k_b1.txt"
timeout 170 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 8 \
  --methods graphed-offload-token,graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/qwen_b8" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee "$OUT/log.txt"
