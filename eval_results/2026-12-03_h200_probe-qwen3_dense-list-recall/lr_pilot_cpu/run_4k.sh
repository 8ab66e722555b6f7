#!/bin/bash
# Does a continuation at 4k at the lower rate bring the multi-answer skill to 4k (where A and the 2k continuations
# score 60-71)? A continued on the development CPU at 4k tokens (prompts of 2k-4k) with half list recall, 8k tokens
# a step, 900 s, at learning rate 3e-4 and at 1e-3; each then with full attention on niah_multivalue and
# niah_multiquery at 4k and 1k (20 samples). Run from the repo root after run.sh; results beside this script.
set -eu
P=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall; D=$P/lr_pilot_cpu
for rate in 3e-4 1e-3; do
  python -m asynctls_hf.probes.train --arch qwen3 --init $P/A --stages 4096 --list-recall 0.5 --tokens-per-step 8192 \
    --learning-rate $rate --time-budget 900 --device cpu --workers 1 --out /tmp/lr_4k_$rate > $D/train_4k_$rate.log 2>&1
  for length in 4096 1024; do
    python -m asynctls_hf.eval --model /tmp/lr_4k_$rate --methods full --tasks niah_multivalue,niah_multiquery \
      --context-lengths $length --samples 20 --no-progress --out /tmp/lr_eval_4k_${rate}_$length > /dev/null 2>&1
    cp /tmp/lr_eval_4k_${rate}_$length/lr_4k_$rate/results.md $D/eval_${length}_after_4k_$rate.md
  done
done
