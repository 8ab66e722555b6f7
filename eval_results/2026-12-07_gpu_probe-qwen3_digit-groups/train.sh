#!/bin/bash
# J (eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J, 4 layers) continued with the tokenizer in which
# three digits are one token (--digit-groups: a value's first token tells it from its key's other values), at 2k, 4k,
# 16k and 32k with half list recall for SECONDS, one run per learning rate side by side (14 sample workers shared
# out). Stages are gated on the answers' first tokens (--gate-metric first_accuracy): a stage ends only once 60% of
# them are right (the CPU pilot beside it: the new tokens cost J its lookup at first). Then full attention at 16k, 20 samples, float32, on the multi-answer tasks and niah_multikey_1 (lookup by
# key, which the one-token-noun runs lost), three processes at a time.
# J's weights first (untracked; they travel with the working tree):  git show c7fcc39:$J/model.safetensors > $J/model.safetensors   (J: the path below)
# Usage (repo root): OUT=dir bash eval_results/2026-12-07_gpu_probe-qwen3_digit-groups/train.sh SECONDS RATE...
#   ran 2026-12-07 on an H100: train.sh 380 3e-4 1e-3 (EVAL.md, "Three digits a token")
# Back: $OUT/NAME.tar (the checkpoint and its train.log; NAME: digit-groups_RATE), $OUT/eval_NAME.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
J=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J
W=/tmp/work; BUDGET=$1; shift; WORKERS=$((14 / $#))
mkdir -p $W
for rate in "$@"; do
  NAME=digit-groups_$rate
  ( timeout $((BUDGET + 60)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $J --digit-groups \
      --gate-metric first_accuracy --stages 2048,4096,16384,32768 --list-recall 0.5 --learning-rate $rate \
      --time-budget $BUDGET --workers $WORKERS --out $W/$NAME > $W/train_$NAME.log 2>&1
    echo "[$SECONDS s] train $NAME rc=$?"; grep -v "shards\|Loading" $W/train_$NAME.log | grep "stage\|saved" | tail -5
    grep -v "shards\|Loading" $W/train_$NAME.log > $W/$NAME/train.log; tar cf $OUT/$NAME.tar -C $W $NAME ) &
done
wait
for rate in "$@"; do
  NAME=digit-groups_$rate; E=/tmp/eval/$NAME; mkdir -p $E
  score() {  # task length
    timeout 240 python3 -m asynctls_hf.eval --model $W/$NAME --methods full --tasks $1 --context-lengths $2 \
      --samples 20 --dtype float32 --no-progress --out $E/${1}_$2 > $E/${1}_$2.log 2>&1
    echo "[$SECONDS s] $NAME $1 $2 rc=$?"
  }
  score niah_multivalue 16384 & score niah_multiquery 16384 & score niah_multikey_1 16384 & wait
  for f in $E/*/*/results.md; do echo "$f: $(grep '^| full' $f)"; done
  (cd $E && tar cf $OUT/eval_$NAME.tar .)
done
