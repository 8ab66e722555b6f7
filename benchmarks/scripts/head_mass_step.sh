#!/bin/bash
# What token selection by head mass (token_scoring="head_mass") costs the graphed decode step at 96k (random
# weights, bf16, 20 steps after 4), against the summed query, one process per setting: GLM-4.7-Flash (one latent
# group of 20 heads, 8192 candidates) and Qwen3-8B (8 groups of 4 heads), at batch 1 and 2 (batch 4 of
# GLM-4.7-Flash at 96k does not fit an H100's 80 GB). Results under $OUT.
# The calls of 2026-12-06 (one H100) ran these settings in two calls, GLM-4.7-Flash at batches 1,4 (4 did not fit).
# BATCHES (default 1,2) picks the batch sizes.
# Usage (repo root): OUT=dir bash benchmarks/scripts/head_mass_step.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for model in glm-4.7-flash qwen3-8b; do
  for scoring in summed head_mass; do
    timeout 100 python -m asynctls_hf bench decode-step --model $model --context-lengths 96k --batches ${BATCHES:-1,2} \
      --methods graphed --token-scoring $scoring --steps 20 --warmup 4 --out "$OUT/step_${model}_$scoring" 2>&1 \
      | grep -v Warning | grep "method=\|rror" | sed "s/^/$model $scoring /" | tee -a "$OUT/head_mass_step_log.txt"
  done
done
