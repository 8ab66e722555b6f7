#!/bin/bash
# The shipped GLM probe continued on the development CPU with its own training mix (8k tokens a step, learning rate
# 1e-3): 900 s at 1k tokens, and separately 2400 s at 512; each then, like the shipped probe, with full attention
# on three tasks at 1k (20 samples). Run from the repo root; results beside this script.
set -eu
D=eval_results/2026-12-03_cpu_probes_answer-positions/glm-continued
TASKS=niah_multikey_1,niah_single_3,niah_multivalue
python -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite --methods full --tasks $TASKS \
  --context-lengths 1024 --samples 20 --out /tmp/glm1k
cp /tmp/glm1k/glm4_moe_lite/results.md $D/eval_1k_shipped.md
for run in "1k 1024 900" "512 512 2400"; do
  set -- $run
  python -m asynctls_hf.probes.train --arch glm4_moe_lite --init asynctls_hf/probes/checkpoints/glm4_moe_lite \
    --stages $2 --tokens-per-step 8192 --learning-rate 1e-3 --time-budget $3 --device cpu --workers 1 \
    --out /tmp/glm_$1 > $D/train_$1.log 2>&1
  python -m asynctls_hf.eval --model /tmp/glm_$1 --methods full --tasks $TASKS --context-lengths 1024 --samples 20 \
    --out /tmp/glm_eval_$1
  cp /tmp/glm_eval_$1/glm_$1/results.md $D/eval_1k_after_$1.md
done
