#!/bin/bash
# After the offload bookkeeping became a few Triton launches per layer (plan, translation, append to store and ring,
# forgetting stale blocks) and the decode token's label one launch: every GPU test first (the new kernels have run
# only in Triton's interpreter until then), then the Qwen3-8B decode step graphed resident and offloaded, the
# offload-decode benchmark graphed with drifting queries (the offload issue's 15% goal at a realistic hit rate), and
# the transfer benchmark (its 70% goal). Each piece time-boxed; results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/fused_offload_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
timeout 150 python -m pytest -q -x -m gpu tests -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
timeout 90 python -m pytest -q tests/ops -p no:cacheprovider >> "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 170 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 48k,96k --batches 1,4 \
  --methods graphed,graphed-offload --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 | grep -v Warning \
  | grep "method=\|Error" | tee "$OUT/qwen_log.txt"
timeout 100 python -m asynctls_hf bench offload-decode --attention gqa --batch 4 --context-lengths 48k,96k \
  --steps 32 --warmup 4 --drift 0.3 --out "$OUT/offload_decode" 2>&1 | grep -v Warning | tail -12
timeout 60 python -m asynctls_hf bench offload-transfer --out "$OUT/offload_transfer" 2>&1 | grep -v Warning | tail -12
