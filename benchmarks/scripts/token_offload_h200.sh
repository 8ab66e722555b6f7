#!/bin/bash
# First H200 run of offload_granularity="token" (exact offload that copies only the selected tokens a step lacks;
# on the Qwen3 probe 8.2-9.5x fewer bytes than whole blocks, EVAL.md) and of the copy-stream knobs: every GPU test
# (the token mode's 256-step equivalence, eager and graphed, and its random-delay test are new), then the Qwen3-8B
# graphed decode step resident / offloaded by blocks (lag 1) / offloaded by tokens at 48k and 96k, batch 1 and 4
# (random weights: hit rates below the probes'), then the attention-plus-GEMMs benchmark with drifting queries at
# 96k batch 4, resident / blocks lag 1 / tokens. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/token_offload_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
timeout 200 python -m pytest -q -m gpu tests -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 200 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 48k,96k --batches 1,4 \
  --methods graphed,graphed-offload,graphed-offload-token --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee "$OUT/qwen_log.txt"
timeout 170 python -m asynctls_hf bench offload-decode --attention gqa --batch 4 --context-lengths 96k --steps 32 \
  --warmup 4 --drift 0.3 --dense-layer --placements resident,lag1,tokens --out "$OUT/overlap" 2>&1 \
  | grep -v Warning | grep "placement=\|rror" | tee "$OUT/overlap_log.txt"
