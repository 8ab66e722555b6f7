#!/bin/bash
# Where the offloaded step's extra time goes at a trained model's hit rate: the offload-decode bench (36 Qwen3-8B
# layers with their GEMMs, drift 0.3) at 48k, resident and tokens exact and lag 1, batch 1 and 4, 5 steps profiled
# per cell (--profile 5); the bench's GPU test first.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 90 python3 -m pytest -q -m gpu tests/offload/test_transfer_bench.py 2>&1 | tail -2
for batch in 1 4; do
  timeout 150 python3 -m asynctls_hf bench offload-decode --attention gqa --layers 36 --dense-layer --drift 0.3 \
    --steps 24 --warmup 4 --profile 5 --placements resident,tokens,tokens-lag1 --context-lengths 48k \
    --batch $batch --out $OUT/b$batch 2>&1 | grep -v "^placement="
done
for f in $OUT/b*/offload_decode_profile.md; do echo "== $f"; grep -A 14 "^## " $f | cut -c1-160; done
