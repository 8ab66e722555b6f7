#!/bin/bash
# First H200 run of offload_granularity="token" with prefetch_lag=1 (the selected tokens a step lacks are copied on
# the side stream for the next step while the later layers compute; this step attends over those already resident),
# and of the per-row prefill attention's flash check fixed (2026-11-29's run found it always False: it asked with
# is_causal, which flash refuses for fewer queries than keys). GPU tests (the lagged-token reference, eager and
# graphed, random delays on both streams; the bf16 prefill attention), the prefill attention check, the Qwen3-8B
# graphed decode step resident / tokens exact / tokens lag 1 at 48k and 96k, batch 1 and 4, then where the token
# modes' step time goes at 48k batch 1 (kernel profile). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/token_lag1_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
timeout 150 python -m pytest -q -m gpu tests/cache/test_offloaded_gpu.py tests/test_graphs.py \
  tests/ops/test_prefill_attention.py -k "token or lag or bf16" -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 60 python benchmarks/scripts/prefill_attention_check.py 2>&1 | grep -v Warning \
  | tee "$OUT/prefill_attention.txt"
timeout 230 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 48k,96k --batches 1,4 \
  --methods graphed,graphed-offload-token,graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee "$OUT/qwen_log.txt"
for method in graphed-offload-token graphed-offload-token-lag1; do
  timeout 70 python -m asynctls_hf bench profile-step --model qwen3-8b --context 49152 --batch 1 --method $method \
    --steps 5 --top 25 2>&1 | grep -v Warning > "$OUT/profile_${method}_48k_b1.txt"
  tail -3 "$OUT/profile_${method}_48k_b1.txt"
done
