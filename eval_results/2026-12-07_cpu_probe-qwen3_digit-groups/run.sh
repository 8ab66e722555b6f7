#!/bin/bash
# CPU pilot: J (eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J) continued with --digit-groups (three
# digits one token, the vocabulary grown: train.with_vocabulary) at 2k (prompts of 1k-2k), half list recall, 8k tokens
# a step, learning rate RATE, for SECONDS; then full attention at 2k, 20 samples, float32, on the multi-answer tasks
# and niah_multikey_1 (lookup by key, which the one-token-noun runs lost), each with the probe's own tokenizer.
# Usage (repo root): bash eval_results/2026-12-07_cpu_probe-qwen3_digit-groups/run.sh RATE SECONDS [INIT]
# INIT (default J) continues another checkpoint (it must carry its tokenizer). FLAGS="..." adds training flags.
# Writes under eval_results/2026-12-07_cpu_probe-qwen3_digit-groups/: train_NAME.log, training_NAME.json, eval_NAME/;
# the weights in /tmp/work_cpu/NAME.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-07_cpu_probe-qwen3_digit-groups
RATE=$1; BUDGET=$2; INIT=${3:-eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J}; FLAGS=${FLAGS:-}
NAME=J_digit-groups_${RATE}_${BUDGET}s${FLAGS:+_${FLAGS// /_}}; [ $# -ge 3 ] && NAME=${NAME}_from_$(basename $INIT)
W=/tmp/work_cpu; mkdir -p $W
python3 -m asynctls_hf.probes.train --arch qwen3 --init $INIT --digit-groups $FLAGS --stages 2048 \
  --tokens-per-step 8192 --list-recall 0.5 --learning-rate $RATE --time-budget $BUDGET --workers 1 \
  --out $W/$NAME 2>&1 | grep --line-buffered -v "shards\|Loading" > $D/train_$NAME.log
cp $W/$NAME/training.json $D/training_$NAME.json
for task in niah_multivalue niah_multiquery niah_multikey_1; do
  python3 -m asynctls_hf.eval --model $W/$NAME --methods full --tasks $task --context-lengths 2048 --samples 20 \
    --dtype float32 --no-progress --out $D/eval_$NAME/$task > /dev/null 2>&1
  echo "$NAME $task: $(grep '^| full' $D/eval_$NAME/$task/*/results.md)"
done
