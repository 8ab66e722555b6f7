#!/bin/bash
# Ran once (H200, 2026-12-03; EVAL.md has the scores, the files it returned were lost). J (J/), the best probe so far on the multi-answer tasks, continued for
# 240 s more with half list recall, side by side: K at 1e-4 (J's own rate, which did better than 3e-4 from G), L at
# 3e-5. Each scored on niah_multikey_1 and the multi-answer tasks at 16k (three processes per model at once; six ran
# out of GPU memory on 2026-12-03, so one model at a time) and on niah_single_3 and niah_multikey_1 at 32k, where J
# scored 90 and 90. About 530 s. Back: $OUT/{K,L}/, the logs, $OUT/eval_{K,L}.tar. J's own niah_single_1 and 2 at
# 32k (not run yet; at 16k it scored 100 on the three single-needle tasks on the CPU), about 90 s:
#   MODEL=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J OUT=dir bash \
#     eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/eval.sh niah_single_1@32768 niah_single_2@32768
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/run_kl.sh
D=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall
bash $D/continue.sh K $D/J 0.5 1e-4 240 7 &
bash $D/continue.sh L $D/J 0.5 3e-5 240 7 &
wait
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
MODEL=/tmp/work/K bash $D/eval.sh $M16 niah_single_3@32768 niah_multikey_1@32768
MODEL=/tmp/work/L bash $D/eval.sh $M16 niah_single_3@32768 niah_multikey_1@32768
