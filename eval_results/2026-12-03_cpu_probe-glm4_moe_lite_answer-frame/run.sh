#!/bin/bash
# Does restating one-value needles in RULER's answer frame (--answer-frame: "The special magic number for K mentioned
# in the provided text is V.", the key five words before the value, where RULER's question puts it) teach the GLM
# probe to find the asked key's needle among others? The same run as
# eval_results/2026-12-03_cpu_probes_answer-positions/glm-continued/run.sh at 1k (the shipped GLM probe continued on
# the development CPU with its own mix, 1k tokens, 8k tokens a step, learning rate 1e-3, 900 s), with half the
# one-value restatements in the answer frame; then full attention on the same three tasks at 1k (20 samples).
# Run from the repo root; results beside this script.
set -eu
D=eval_results/2026-12-03_cpu_probe-glm4_moe_lite_answer-frame
python -m asynctls_hf.probes.train --arch glm4_moe_lite --init asynctls_hf/probes/checkpoints/glm4_moe_lite \
  --stages 1024 --tokens-per-step 8192 --learning-rate 1e-3 --answer-frame 0.5 --time-budget 900 --device cpu \
  --workers 1 --out /tmp/glm_answer_frame > $D/train.log 2>&1
python -m asynctls_hf.eval --model /tmp/glm_answer_frame --methods full \
  --tasks niah_multikey_1,niah_single_3,niah_multivalue --context-lengths 1024 --samples 20 --no-progress \
  --out /tmp/glm_answer_frame_eval > /dev/null 2>&1
cp /tmp/glm_answer_frame_eval/glm_answer_frame/results.md $D/eval_1k.md
