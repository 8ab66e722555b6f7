#!/bin/bash
# Run 2026-12-03 (EVAL.md; it ran as one inline command on the machine run_df.sh left warm, with these steps). D
# continued for 240 s more at 3e-4, side by side: G with half list recall (D's mix), H with list recall only. Then full
# attention, 20 samples: niah_multikey_1 and the multi-answer tasks at 16k (both models at once), the multi-answer
# tasks at 32k (one process at a time). Back: $OUT/{G,H}/, the logs, $OUT/eval_{G,H}.tar.
# Usage (repo root, after run_df.sh on the same machine): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_gh.sh
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall
bash $D/continue.sh G /tmp/work/D 0.5 3e-4 240 7 &
bash $D/continue.sh H /tmp/work/D 1.0 3e-4 240 7 &
wait
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
MODEL=/tmp/work/G bash $D/eval.sh $M16 &
MODEL=/tmp/work/H bash $D/eval.sh $M16 &
wait
MODEL=/tmp/work/G bash $D/eval.sh niah_multivalue@32768 niah_multiquery@32768
MODEL=/tmp/work/H bash $D/eval.sh niah_multivalue@32768 niah_multiquery@32768
