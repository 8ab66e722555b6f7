#!/bin/bash
# Not run yet (for the next H200 session). Phase D: phase A's weights (A/, every recall sequence a list-recall one
# at 1k; it gives all four niah_multivalue values at 1k, answer_order/) continued at 4k, 16k and 32k as B was (half
# list recall, 150 s) but at a third of B's learning rate (3e-4): B lost A's skill at every length, and CPU pilots
# at 2k and 4k kept more of it at 3e-4 (lr_pilot_cpu/, EVAL.md). Then full attention: the multi-answer tasks at 1k
# (did D keep A's skill?), the six needle tasks at 16k (three at a time) and the multi-answer ones and
# niah_multikey_1 at 32k (one at a time). About 450 s. Back: $OUT/D/ (weights, training.json), the log,
# $OUT/eval.tar (continue_a.sh).
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_d.sh
M1=niah_multikey_1@1024,niah_multivalue@1024,niah_multiquery@1024
S16=niah_single_1@16384,niah_single_2@16384,niah_single_3@16384
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/continue_a.sh D 0.5 3e-4 $M1 $S16 $M16 \
  niah_multivalue@32768 niah_multiquery@32768 niah_multikey_1@32768
