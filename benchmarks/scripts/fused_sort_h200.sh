#!/bin/bash
# The token ids an offloaded layer plans sorted by one Triton launch
# (ops.sort_ids, tl.sort in registers) instead of torch.sort (0.96 ms per step at 48k batch 1 on the exact step's
# path, 2026-11-29 profile), and the circular plan's victim scan stopping at the first chunk that completes it.
# GPU tests of the ops, the offload engine, the offloaded cache and the graphs; the Qwen3-8B graphed step resident /
# tokens exact at 48k and 96k, batch 1 and 4; the exact step's kernel profile at 48k batch 1. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/fused_sort_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 150 python -m pytest -q -m gpu tests/ops/test_resident_plan.py tests/offload tests/cache/test_offloaded_gpu.py \
  tests/test_graphs.py -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 140 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 48k,96k --batches 1,4 \
  --methods graphed,graphed-offload-token --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee "$OUT/log.txt"
timeout 70 python -m asynctls_hf bench profile-step --model qwen3-8b --context 49152 --batch 1 \
  --method graphed-offload-token --steps 5 --top 25 2>&1 | grep -v Warning > "$OUT/profile_token_exact_48k_b1.txt"
tail -1 "$OUT/profile_token_exact_48k_b1.txt"
