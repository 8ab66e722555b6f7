#!/bin/bash
# Where the graphed offloaded decode step of a full-size Qwen3-8B spends its GPU time: at 1k (every block fits the
# slots: bookkeeping only) and at 48k, batch 1. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/profile_offload_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for context in 1024 49152; do
  timeout 130 python -m asynctls_hf bench profile-step --model qwen3-8b --method graphed-offload --context $context \
    --batch 1 --top 60 2>&1 | grep -v Warning | tee "$OUT/qwen_offload_${context}_b1.txt" | tail -3
done
