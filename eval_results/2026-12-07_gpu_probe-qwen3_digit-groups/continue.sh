#!/bin/bash
# A digit-group probe beside this script (default digit-groups_1e-3_more_3e-4: J with --digit-groups, train.sh's
# 1e-3 run continued) continued with half list recall for SECONDS more at each learning rate given, side by side
# (14 sample workers shared out), stages gated on the answers' first tokens; then full attention at 16k, 20 samples,
# float32, on the multi-answer tasks and niah_multikey_1, three processes at a time.
# digit-groups_1e-3_more_3e-4 itself came from (2026-12-07, H100, an inline call with these steps)
#   INIT=digit-groups_1e-3 STAGES=4096,16384,32768 continue.sh 290 3e-4
# The default init's weights left the tree on 2026-12-08 (the GPU machine takes 64 MiB of working tree); back with
#   git show 8aa07be:eval_results/2026-12-07_gpu_probe-qwen3_digit-groups/digit-groups_1e-3_more_3e-4/model.safetensors \
#     > eval_results/2026-12-07_gpu_probe-qwen3_digit-groups/digit-groups_1e-3_more_3e-4/model.safetensors
# Usage (repo root): OUT=dir [INIT=name] [STAGES=...] bash eval_results/2026-12-07_gpu_probe-qwen3_digit-groups/continue.sh SECONDS RATE...
# Back: $OUT/NAME.tar (the checkpoint), $OUT/train_NAME.log, $OUT/eval_NAME.tar (NAME: INIT_more_RATE).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-07_gpu_probe-qwen3_digit-groups; W=/tmp/work; BUDGET=$1; shift; WORKERS=$((14 / $#))
INIT=${INIT:-digit-groups_1e-3_more_3e-4}; STAGES=${STAGES:-16384,32768}
mkdir -p $W
for rate in "$@"; do
  NAME=${INIT}_more_$rate
  ( timeout $((BUDGET + 60)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $D/$INIT --digit-groups \
      --gate-metric first_accuracy --stages $STAGES --list-recall 0.5 --learning-rate $rate --time-budget $BUDGET \
      --workers $WORKERS --out $W/$NAME > $W/train_$NAME.log 2>&1
    echo "[$SECONDS s] train $NAME rc=$?"; grep -v "shards\|Loading" $W/train_$NAME.log > $OUT/train_$NAME.log
    grep "stage\|saved" $OUT/train_$NAME.log; tar cf $OUT/$NAME.tar -C $W $NAME ) &
done
wait
for rate in "$@"; do
  NAME=${INIT}_more_$rate; E=/tmp/eval/$NAME; mkdir -p $E
  for task in niah_multivalue niah_multiquery niah_multikey_1; do
    timeout 240 python3 -m asynctls_hf.eval --model $W/$NAME --methods full --tasks $task --context-lengths 16384 \
      --samples 20 --dtype float32 --no-progress --out $E/${task}_16384 > $E/${task}_16384.log 2>&1 &
  done
  wait
  for f in $E/*/*/results.md; do echo "$f: $(grep '^| full' $f)"; done
  (cd $E && tar cf $OUT/eval_$NAME.tar .)
done
