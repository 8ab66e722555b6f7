#!/bin/bash
# J (the best Qwen3 probe on the multi-answer tasks, 4 layers; eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J,
# weights: `git show c7fcc39:` of its model.safetensors) grown to 8 layers (--grow-after 0,1,2,3: each layer followed by
# a copy with zero output projections, the same function to start from) and continued at 4k, 16k and 32k with half
# list recall, one run per RATE:SCALE[:FLAG] side by side (14 sample workers shared out; SCALE: the added layers' rate as a
# multiple of RATE, --grown-rate-scale; FLAG: a training flag without its dashes, e.g. any-key-order or key-lists=0.5). Then full
# attention on the multi-answer tasks at 16k, 20 samples, float32, two processes at a time.
# Ran 2026-12-07 on one H100 (EVAL.md, "The grown Qwen3 probe at length"); the tars that came back are unpacked here
# (weights not kept), the runs' train logs and training.json as train_NAME.log and training_NAME.json.
# J's weights first (untracked; they travel with the working tree):
#   git show c7fcc39:$J/model.safetensors > $J/model.safetensors   (J: the path below)
# The document-order run was continued by hand in the next call (NAME grown_1e-4_scale-1_key-order_document2):
#   python3 -m asynctls_hf.probes.train --arch qwen3 --init /tmp/work/grown_1e-4_scale-1_key-order=document \
#     --stages 16384,32768 --list-recall 0.5 --learning-rate 1e-4 --key-order document --time-budget 270 --workers 14
#   and scored as below.
# Usage (repo root): OUT=dir bash eval_results/2026-12-07_h100_probe-qwen3_grown/train.sh SECONDS RATE:SCALE[:FLAG]...
#   ran: train.sh 320 1e-4:1 1e-4:1:key-order=document 1e-4:1:key-lists=0.5
# Back: $OUT/NAME.tar (NAME: grown_RATE_scale-SCALE[_FLAG]; the checkpoint and its train.log), $OUT/eval_NAME.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
J=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J
W=/tmp/work; BUDGET=$1; shift; WORKERS=$((14 / $#))
mkdir -p $W
name() { IFS=: read -r rate scale flag <<< "$1"; f=${flag//=/_}; NAME=grown_${rate}_scale-$scale${f:+_$f}; }  # no "=": such names do not come back
for run in "$@"; do
  name $run
  ( timeout $((BUDGET + 60)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $J --grow-after 0,1,2,3 \
      --stages 4096,16384,32768 --list-recall 0.5 --learning-rate $rate --grown-rate-scale $scale \
      --time-budget $BUDGET --workers $WORKERS ${flag:+--$flag} \
      --out $W/$NAME > $W/train_$NAME.log 2>&1
    echo "[$SECONDS s] train $NAME rc=$?"; grep -v shards $W/train_$NAME.log | tail -2
    cp $W/train_$NAME.log $W/$NAME/train.log; tar cf $OUT/$NAME.tar -C $W $NAME ) &
done
wait
for run in "$@"; do
  name $run; E=/tmp/eval/$NAME; mkdir -p $E
  for task in niah_multivalue niah_multiquery; do
    ( timeout 200 python3 -m asynctls_hf.eval --model $W/$NAME --methods full --tasks $task --context-lengths 16384 \
        --samples 20 --dtype float32 --no-progress --out $E/${task}_16384 > $E/${task}_16384.log 2>&1
      echo "[$SECONDS s] $NAME $task 16384 rc=$?" ) &
  done
  wait
  for f in $E/*/*/results.md; do echo "$f: $(grep '^| full' $f)"; done
  (cd $E && tar cf $OUT/eval_$NAME.tar .)
done
