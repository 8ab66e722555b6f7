#!/bin/bash
# Not run yet (for the next H200 session). J, the best probe so far on the multi-answer tasks (J/), scored on the
# needle tasks it was not scored on: the single-needle ones at 16k (three processes at once) and at 32k with
# niah_multikey_1 (one at a time). Then J continued for 240 s more with half list recall, side by side: K at 1e-4
# (J's own rate, which did better than 3e-4 from G), L at 3e-5; each scored on niah_multikey_1 and the multi-answer
# tasks at 16k (three processes per model at once; six ran out of GPU memory on 2026-12-03, so one model at a time).
# About 520 s. Back: $OUT/{K,L}/, the logs, $OUT/eval_{J,K,L}.tar.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_kl.sh
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall
MODEL=$D/J bash $D/eval.sh niah_single_1@16384,niah_single_2@16384,niah_single_3@16384 niah_single_1@32768 \
  niah_single_2@32768 niah_single_3@32768 niah_multikey_1@32768
bash $D/continue.sh K $D/J 0.5 1e-4 240 7 &
bash $D/continue.sh L $D/J 0.5 3e-5 240 7 &
wait
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
MODEL=/tmp/work/K bash $D/eval.sh $M16
MODEL=/tmp/work/L bash $D/eval.sh $M16
