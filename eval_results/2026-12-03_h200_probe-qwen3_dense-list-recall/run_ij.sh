#!/bin/bash
# Run 2026-12-03 (EVAL.md; one inline command after run_gh.sh on the same machine, with these steps). G continued for
# 240 s more with half list recall, side by side: I at 3e-4, J at 1e-4. Then full attention, 20 samples: niah_multikey_1
# and the multi-answer tasks at 16k (both models at once: two of J's six ran out of GPU memory beside the others and
# ran again in a last call, with J's multi-answer tasks at 32k), and I's multi-answer tasks, niah_multikey_1 and
# niah_single_3 at 32k (one process at a time). J's weights are kept (J/). Back: $OUT/{I,J}/, the logs,
# $OUT/eval_{I,J}.tar.
# Usage (repo root, after run_gh.sh on the same machine): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_ij.sh
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall
bash $D/continue.sh I /tmp/work/G 0.5 3e-4 240 7 &
bash $D/continue.sh J /tmp/work/G 0.5 1e-4 240 7 &
wait
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
MODEL=/tmp/work/I bash $D/eval.sh $M16 &
MODEL=/tmp/work/J bash $D/eval.sh $M16 &
wait
MODEL=/tmp/work/I bash $D/eval.sh niah_multivalue@32768 niah_multiquery@32768 niah_multikey_1@32768 niah_single_3@32768
MODEL=/tmp/work/J bash $D/eval.sh niah_multikey_1@16384,niah_multiquery@16384 niah_multivalue@32768 niah_multiquery@32768
