#!/bin/bash
# Does training lists in any order (--any-order: at each value of a key's list every value not written yet is right,
# as RULER scores them) keep and spread the multi-answer skill better than training them in document order? The
# same run as lr_pilot_cpu/run_4k.sh at 3e-4 (phase A continued on the development CPU at 4k tokens, prompts of
# 2k-4k, half list recall, 8k tokens a step, 900 s), with --any-order; then full attention on niah_multivalue and
# niah_multiquery at 4k and 1k (20 samples). Run from the repo root; results beside this script.
set -eu
A=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/A; D=eval_results/2026-12-03_cpu_probe-qwen3_any-order
python -m asynctls_hf.probes.train --arch qwen3 --init $A --stages 4096 --list-recall 0.5 --tokens-per-step 8192 \
  --learning-rate 3e-4 --any-order --time-budget 900 --device cpu --workers 1 --out /tmp/any_order_4k > $D/train.log 2>&1
for length in 4096 1024; do
  python -m asynctls_hf.eval --model /tmp/any_order_4k --methods full --tasks niah_multivalue,niah_multiquery \
    --context-lengths $length --samples 20 --no-progress --out /tmp/any_order_eval_$length > /dev/null 2>&1
  cp /tmp/any_order_eval_$length/any_order_4k/results.md $D/eval_$length.md
done
