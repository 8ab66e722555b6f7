#!/bin/bash
# J (eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J, 4 layers) continued with the tokenizer in which a
# RULER word key's noun is one token (--hyphen-nouns; EVAL.md, "Keyed answers find the next key; copying its noun
# fails"), at 2k, 4k, 16k and 32k with half list recall, learning rate 3e-4, one run per flag set side by side
# (14 sample workers shared out). Then full attention on the multi-answer tasks at 16k, 20 samples, float32, two
# processes at a time, and at 32k one at a time where the GPU has the memory (float32 at 32k takes about 86 GiB).
# Ran 2026-12-07 on an H100: `train.sh 380 keyed-answers none` (EVAL.md, "J with one-token nouns at length").
# J's weights first (untracked; they travel with the working tree):  git show c7fcc39:$J/model.safetensors > $J/model.safetensors   (J: the path below)
# Usage (repo root): OUT=dir bash eval_results/2026-12-07_gpu_probe-qwen3_hyphen-nouns/train.sh SECONDS FLAGS...
#   FLAGS: training flags without their dashes, joined by "+" (each run adds --hyphen-nouns), e.g.
#   train.sh 380 keyed-answers none
# Back: $OUT/NAME.tar (NAME: hyphen-nouns[_FLAGS]; the checkpoint and its train.log), $OUT/eval_NAME.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
J=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J
W=/tmp/work; BUDGET=$1; shift; WORKERS=$((14 / $#))
mkdir -p $W
name() { NAME=hyphen-nouns; [ "$1" != none ] && NAME=${NAME}_${1//[+=]/_}; FLAGS=""; [ "$1" != none ] && FLAGS="--${1//+/ --}"; }
for run in "$@"; do
  name $run
  ( timeout $((BUDGET + 60)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $J --hyphen-nouns $FLAGS \
      --stages 2048,4096,16384,32768 --list-recall 0.5 --learning-rate 3e-4 --time-budget $BUDGET --workers $WORKERS \
      --out $W/$NAME > $W/train_$NAME.log 2>&1
    echo "[$SECONDS s] train $NAME rc=$?"; grep -v shards $W/train_$NAME.log | tail -2
    cp $W/train_$NAME.log $W/$NAME/train.log; tar cf $OUT/$NAME.tar -C $W $NAME ) &
done
wait
GIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
for run in "$@"; do
  name $run; E=/tmp/eval/$NAME; mkdir -p $E
  score() {  # task length
    timeout 200 python3 -m asynctls_hf.eval --model $W/$NAME --methods full --tasks $1 --context-lengths $2 \
      --samples 20 --dtype float32 --no-progress --out $E/${1}_$2 > $E/${1}_$2.log 2>&1
    echo "[$SECONDS s] $NAME $1 $2 rc=$?"
  }
  score niah_multivalue 16384 & score niah_multiquery 16384 & wait
  if [ "$GIB" -gt 100000 ]; then score niah_multivalue 32768; score niah_multiquery 32768; fi
  for f in $E/*/*/results.md; do echo "$f: $(grep '^| full' $f)"; done
  (cd $E && tar cf $OUT/eval_$NAME.tar .)
done
