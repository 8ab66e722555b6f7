#!/bin/bash
# One task ($1) at 16k with 40 samples on the development CPU (2026-12-06, float32, seed 0): full attention and
# asynctls at budget 1024 with the default token scoring (head mass for the probe's latent keys), side by side.
# Ran for niah_multikey_1 and niah_multiquery: cpu_TASK_16k_40-samples/.
# Usage (repo root): bash eval_results/2026-12-06_h100_probe-glm4_moe_lite_label-sweep/cpu_40-samples.sh TASK
set -u
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
OUT_DIR=eval_results/2026-12-06_h100_probe-glm4_moe_lite_label-sweep/cpu_$1_16k_40-samples
mkdir -p $OUT_DIR
for method in asynctls full; do
  python -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite --methods $method --budgets 1024 \
    --tasks $1 --context-lengths 16384 --samples 40 --dtype float32 --no-progress \
    --out $OUT_DIR/$method > $OUT_DIR/$method.log 2>&1 &
done
wait
