#!/bin/bash
# Full attention at 32k, 20 samples, float32, on the development CPU: one task at a time, into $D/eval_NAME_32k/TASK.
# On the GPU the probe's float32 full attention at 32k falls back to SDPA's math kernel, which holds the attention
# weights (a 31.7 GiB allocation, eval_results/2026-11-30_h200_probes_40-samples/qwen3_full_1024_32768.log;
# about 86 GiB at the peak): more than an H100 has. On the CPU SDPA's kernel works in blocks: 1.2 GB maximum RSS,
# about 34 s a sample (12 min a task). Since 2026-12-08 the eval's load_model gives a float32 grouped-query model on
# CUDA repeated key/value heads (asynctls_hf.eval.generation.sdpa_repeated_kv), so the GPU runs it in blocks too.
# Usage (repo root; D=folder for another results folder): bash eval_results/2026-12-07_gpu_probe-qwen3_shared-prefix-long/score_32k_cpu.sh NAME MODEL TASK...
#   ran 2026-12-07: score_32k_cpu.sh more2_key-lists_0.8 eval_results/2026-12-07_gpu_probe-qwen3_sorted-lists/more2_key-lists_0.8 \
#     niah_multiquery niah_multivalue niah_multikey_1 niah_single_3 niah_single_1 niah_single_2
set -eu
export PYTHONPATH=$PWD PATH=$PWD/.venv/bin:$PATH
D=${D:-eval_results/2026-12-07_gpu_probe-qwen3_shared-prefix-long}; NAME=$1; MODEL=$2; shift 2
for task in "$@"; do
  python3 -m asynctls_hf.eval --model $MODEL --methods full --tasks $task --context-lengths 32768 --samples 20 \
    --dtype float32 --no-progress --out $D/eval_${NAME}_32k/$task > /dev/null 2>&1
  echo "$NAME $task 32768: $(grep '^| full' $D/eval_${NAME}_32k/$task/*/results.md)"
done
