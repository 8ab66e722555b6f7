#!/bin/bash
# A checkpoint continued at 4k, 16k and 32k, trained into /tmp/work/NAME.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/continue.sh \
#   NAME INIT LIST_RECALL LEARNING_RATE [SECONDS (150)] [WORKERS (14)] [more train flags...]
# Back: $OUT/NAME/ (weights, training.json), $OUT/train_NAME.log. eval.sh (MODEL=/tmp/work/NAME) evaluates it.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
W=/tmp/work; NAME=$1; SECONDS_BUDGET=${5:-150}
mkdir -p $W $OUT/$NAME
timeout $((SECONDS_BUDGET + 40)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $2 \
  --stages 4096,16384,32768 --list-recall $3 --learning-rate $4 --time-budget $SECONDS_BUDGET --workers ${6:-14} \
  --out $W/$NAME "${@:7}" > $OUT/train_$NAME.log 2>&1
echo "[$SECONDS s] train $NAME rc=$?"; grep -v shards $OUT/train_$NAME.log | tail -2
cp $W/$NAME/model.safetensors $W/$NAME/training.json $OUT/$NAME/
