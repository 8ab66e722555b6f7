#!/bin/bash
# Does the continuation's learning rate wear away phase A's multi-answer skill? A (../A) continued on the development
# CPU at 2k tokens with half list recall (as phase B's mix), 8k tokens a step, 900 s, at B's learning rate (1e-3)
# and at a third of it (3e-4); each then with full attention on niah_multivalue and niah_multiquery at 1k (20
# samples), as A itself scored (98.8 / 91.2, ../eval_cpu); then A and both at 4k. Run from the repo root; results
# beside this script.
set -eu
P=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall; D=$P/lr_pilot_cpu
for rate in 1e-3 3e-4; do
  python -m asynctls_hf.probes.train --arch qwen3 --init $P/A --stages 2048 --list-recall 0.5 --tokens-per-step 8192 \
    --learning-rate $rate --time-budget 900 --device cpu --workers 1 --out /tmp/lr_$rate > $D/train_$rate.log 2>&1
  python -m asynctls_hf.eval --model /tmp/lr_$rate --methods full --tasks niah_multivalue,niah_multiquery \
    --context-lengths 1024 --samples 20 --no-progress --out /tmp/lr_eval_$rate > /dev/null 2>&1
  cp /tmp/lr_eval_$rate/lr_$rate/results.md $D/eval_1k_lr_$rate.md
done
# Then A and both continuations at 4k, twice the continuations' training length (niah_multivalue, niah_multiquery).
for model in $P/A /tmp/lr_1e-3 /tmp/lr_3e-4; do
  name=$(basename $model)
  python -m asynctls_hf.eval --model $model --methods full --tasks niah_multivalue,niah_multiquery \
    --context-lengths 4096 --samples 20 --no-progress --out /tmp/lr_eval4k_$name > /dev/null 2>&1
  cp /tmp/lr_eval4k_$name/$name/results.md $D/eval_4k_$name.md
done
