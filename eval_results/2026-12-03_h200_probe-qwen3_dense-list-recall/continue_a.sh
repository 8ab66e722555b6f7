#!/bin/bash
# Phase A's weights (A/) continued at 4k, 16k and 32k for 150 s, then full attention by eval.sh.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/continue_a.sh \
#   NAME LIST_RECALL LEARNING_RATE WAVE...      (WAVE: eval.sh's task@length,... cells run at once)
# Back: $OUT/NAME/ (weights, training.json), $OUT/train_NAME.log, $OUT/eval.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall; W=/tmp/work; NAME=$1; mkdir -p $W $OUT/$NAME
timeout 190 python3 -m asynctls_hf.probes.train --arch qwen3 --init $D/A --stages 4096,16384,32768 \
  --list-recall $2 --learning-rate $3 --time-budget 150 --workers 14 --out $W/$NAME > $OUT/train_$NAME.log 2>&1
echo "[$SECONDS s] train $NAME rc=$?"; grep -v shards $OUT/train_$NAME.log | tail -2
cp $W/$NAME/model.safetensors $W/$NAME/training.json $OUT/$NAME/
MODEL=$W/$NAME bash $D/eval.sh "${@:4}"
