#!/bin/bash
# Full attention on needle tasks for a continued probe, $MODEL (the calls below: B/, run.sh's training), 20 samples,
# float32, one process per (task, length). Each argument is a wave of task@length cells run at once; the waves run
# in turn. Back: $OUT/eval_NAME.tar (NAME: the model directory's name; the two calls below returned eval.tar).
# B's H200 calls of 2026-12-03 (MODEL=B):
#   1. the six needle tasks at 16k in one wave, then at 32k in two waves of three; five cells ran out of GPU memory
#      (a 32k float32 full-attention prefill peaks near 86 GiB) and one at 16k beside them:
#      S=niah_single_1,niah_single_2,niah_single_3 M=niah_multikey_1,niah_multivalue,niah_multiquery
#      bash eval.sh {S,M}@16384 (all six in one argument) niah_single_{1,2,3}@32768 ... (three per argument)
#   2. those cells again: niah_multikey_1@16384,niah_single_2@16384 then the four 32k ones, one wave each:
#      bash eval.sh niah_multikey_1@16384,niah_single_2@16384 niah_multivalue@32768 niah_multikey_1@32768 \
#        niah_single_2@32768 niah_single_3@32768
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/eval.sh WAVE...
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall; MODEL=${MODEL:?set MODEL to the checkpoint directory}; NAME=$(basename $MODEL); E=/tmp/eval/$NAME; mkdir -p $E
one() {  # task length
  timeout 280 python3 -m asynctls_hf.eval --model $MODEL --methods full --tasks $1 --context-lengths $2 --samples 20 \
    --dtype float32 --no-progress --out $E/$1_$2 > $E/$1_$2.log 2>&1
  echo "[$SECONDS s] $1 $2 rc=$?"
}
for wave in "$@"; do
  for cell in ${wave//,/ }; do one ${cell%@*} ${cell#*@} & done
  wait
done
for f in $E/*/$NAME/results.md; do echo "$f: $(grep '^| full' $f)"; done
cd $E && tar cf $OUT/eval_$NAME.tar .
