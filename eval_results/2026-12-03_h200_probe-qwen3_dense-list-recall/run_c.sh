#!/bin/bash
# Run 2026-12-03 (EVAL.md). Phase C: phase A's weights (A/, every recall sequence a list-recall one
# at 1k) continued at 4k, 16k and 32k with every recall sequence a list-recall one (phase B had half, and lost part
# of A's skill at every length), 150 s; then full attention on the six needle tasks at 16k (three at a time) and
# 32k (one at a time) by eval.sh. Back: $OUT/C/ (weights, training.json), the log, $OUT/eval.tar.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_c.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall; W=/tmp/work; mkdir -p $W $OUT/C
timeout 190 python3 -m asynctls_hf.probes.train --arch qwen3 --init $D/A --stages 4096,16384,32768 --list-recall 1.0 \
  --learning-rate 1e-3 --time-budget 150 --workers 14 --out $W/C > $OUT/train_C.log 2>&1
echo "[$SECONDS s] train C rc=$?"; grep -v shards $OUT/train_C.log | tail -2
cp $W/C/model.safetensors $W/C/training.json $OUT/C/
S16=niah_single_1@16384,niah_single_2@16384,niah_single_3@16384
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
MODEL=$W/C bash $D/eval.sh $S16 $M16 niah_multivalue@32768 niah_multiquery@32768 niah_multikey_1@32768 \
  niah_single_3@32768 niah_single_1@32768 niah_single_2@32768
