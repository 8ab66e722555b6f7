#!/bin/bash
# Run 2026-12-03 (EVAL.md). Phases D and F, trained side by side on one H200 (7 sample workers each): phase A's weights (A/, every recall
# sequence a list-recall one at 1k; it gives all four niah_multivalue values at 1k, answer_order/) continued at 4k,
# 16k and 32k with B's mix (half list recall) for 240 s at a third of B's learning rate (3e-4): B and C lost A's
# skill at every length at 1e-3, and CPU pilots at 2k and 4k kept more of it at 3e-4 (lr_pilot_cpu/, EVAL.md).
# F also trains lists in any order (--any-order). Then full attention, 20 samples: the multi-answer tasks at 1k
# (did they keep A's skill?) and niah_multikey_1 and the multi-answer tasks at 16k (three processes at a time).
# Back: $OUT/{D,F}/ (weights, training.json), the logs, $OUT/eval_{D,F}.tar.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_df.sh
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall
bash $D/continue.sh D $D/A 0.5 3e-4 240 7 &
bash $D/continue.sh F $D/A 0.5 3e-4 240 7 --any-order &
wait
M1=niah_multikey_1@1024,niah_multivalue@1024,niah_multiquery@1024
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
MODEL=/tmp/work/D bash $D/eval.sh $M1 $M16 &
MODEL=/tmp/work/F bash $D/eval.sh $M1 &
wait
MODEL=/tmp/work/F bash $D/eval.sh $M16
