#!/bin/bash
# The shipped Qwen3 probe with full attention at 16k on the two multi-answer tasks, 40 samples, float32 (the cells
# the 40-sample grid did not finish); alone on the GPU, within 170 s; results $OUT/full.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 170 python3 -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/qwen3 --methods full \
  --tasks niah_multivalue,niah_multiquery --context-lengths 16384 --samples 40 --dtype float32 --no-progress \
  --out /tmp/full 2>&1 | grep -v Warning | tail -5
cat /tmp/full/*/results.md 2>/dev/null
cd /tmp/full && tar cf $OUT/full.tar . ; ls -la $OUT
