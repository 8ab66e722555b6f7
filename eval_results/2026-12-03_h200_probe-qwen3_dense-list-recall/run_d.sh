#!/bin/bash
# Not run yet (for the next H200 session). Phase D: phase A's weights (A/, every recall sequence a list-recall one
# at 1k; it gives all four niah_multivalue values at 1k, answer_order/) continued at 4k, 16k and 32k as B was (half
# list recall, 150 s) but at a third of B's learning rate (3e-4): B and C, at 1e-3, lost A's skill at every length
# (EVAL.md). Then full attention by eval.sh: the multi-answer tasks at 1k (did D keep A's skill?), the six needle
# tasks at 16k (three at a time) and the multi-answer ones and niah_multikey_1 at 32k (one at a time). About 450 s.
# Back: $OUT/D/ (weights, training.json), the log, $OUT/eval.tar.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_d.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall; W=/tmp/work; mkdir -p $W $OUT/D
timeout 190 python3 -m asynctls_hf.probes.train --arch qwen3 --init $D/A --stages 4096,16384,32768 --list-recall 0.5 \
  --learning-rate 3e-4 --time-budget 150 --workers 14 --out $W/D > $OUT/train_D.log 2>&1
echo "[$SECONDS s] train D rc=$?"; grep -v shards $OUT/train_D.log | tail -2
cp $W/D/model.safetensors $W/D/training.json $OUT/D/
M1=niah_multikey_1@1024,niah_multivalue@1024,niah_multiquery@1024
S16=niah_single_1@16384,niah_single_2@16384,niah_single_3@16384
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
MODEL=$W/D bash $D/eval.sh $M1 $S16 $M16 niah_multivalue@32768 niah_multiquery@32768 niah_multikey_1@32768
