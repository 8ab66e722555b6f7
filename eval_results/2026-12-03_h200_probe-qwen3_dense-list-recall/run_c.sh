#!/bin/bash
# Run 2026-12-03 (EVAL.md). Phase C: phase A's weights (A/, every recall sequence a list-recall one at 1k) continued
# at 4k, 16k and 32k with every recall sequence a list-recall one (phase B had half, and lost part of A's skill at
# every length), learning rate 1e-3, 150 s; then full attention on the six needle tasks at 16k (three at a time)
# and 32k (one at a time). Back: $OUT/C/ (weights, training.json), the log, $OUT/eval_C.tar.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_c.sh
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall
S16=niah_single_1@16384,niah_single_2@16384,niah_single_3@16384
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
bash $D/continue.sh C $D/A 1.0 1e-3
MODEL=/tmp/work/C bash $D/eval.sh $S16 $M16 niah_multivalue@32768 niah_multiquery@32768 niah_multikey_1@32768 \
  niah_single_3@32768 niah_single_1@32768 niah_single_2@32768
