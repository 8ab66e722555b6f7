#!/bin/bash
# Keys and values side by side in the host store (one read per token; copy_rows splits each entry between the key
# and value buffers) against the package before it (devrun/before_interleave = git archive 71d0a07), alternated.
# The whole Qwen3-8B decode step at 96k, queries smoothed (--query-smoothing 0.05) for a trained model's hit rate:
# resident, tokens exact, tokens lag 1. GPU tests of the ops' copy, the offload engine and the offloaded cache first.
set -u
export PYTHONUNBUFFERED=1
ROOT=$PWD
PYTHONPATH=$ROOT timeout 120 python3 -m pytest -q -m gpu tests/ops/test_copy_rows.py tests/offload \
  tests/cache/test_offloaded_gpu.py 2>&1 | tail -2
bench() {  # package_root batch name
  (cd $1 && PYTHONPATH=$PWD timeout 100 python3 -m asynctls_hf bench decode-step --model qwen3-8b \
    --context-lengths 96k --batches $2 --methods graphed,graphed-offload-token,graphed-offload-token-lag1 \
    --steps 24 --warmup 4 --query-smoothing 0.05 --out $OUT/$3 2>&1 | grep "^method=" | sed "s/^/$3 /")
}
date +%T
bench devrun/before_interleave 1 before_b1_r1
bench $ROOT 1 after_b1_r1
bench $ROOT 1 after_b1_r2
bench devrun/before_interleave 1 before_b1_r2
bench $ROOT 4 after_b4_r1
bench devrun/before_interleave 4 before_b4_r1
date +%T
