#!/bin/bash
# After the offloaded store moved from PyTorch's pinned caching allocator (which rounds each layer's store up to a
# power of two: 36 x 2 GiB for a 54.3 GiB batch-4 cache, 36 x 4 GiB for batch 8's 108 GiB, more than this 125 GiB
# host) to exact-size page-locked mappings: every GPU test, then the Qwen3-8B graphed step offloaded by tokens at
# 96k batch 4 (refused for host memory on 2026-11-29 after the block-offloaded run's cache), and the #6 cell, the
# graphed offloaded step at 96k batch 8 (killed on 2026-11-29; batch 7 if it fails again). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/exact_pinned_h200.sh
set -u
source benchmarks/scripts/decode_step_bench.sh
free -g | tee "$OUT/free.txt"
timeout 170 python -m pytest -q -m gpu tests -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
bench qwen_96k_b4 110 --model qwen3-8b --context-lengths 96k --batches 4 \
  --methods graphed-offload,graphed-offload-token
timeout 200 python -m asynctls_hf bench decode-step --steps 20 --warmup 4 --out "$OUT/qwen_96k_b8" \
  --model qwen3-8b --context-lengths 96k --batches 8 --methods graphed-offload,graphed-offload-token \
  > "$OUT/qwen_96k_b8.log" 2>&1
echo "exit $?" >> "$OUT/qwen_96k_b8.log"
grep "method=\|rror\|exit\|Killed" "$OUT/qwen_96k_b8.log" | tail -5 | tee -a "$OUT/log.txt"
if ! grep -q "method=graphed-offload batch=8 .*status=ok" "$OUT/log.txt"; then
  bench qwen_96k_b7 110 --model qwen3-8b --context-lengths 96k --batches 7 --methods graphed-offload
fi
