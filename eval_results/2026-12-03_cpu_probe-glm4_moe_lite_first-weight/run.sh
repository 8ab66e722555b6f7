#!/bin/bash
# Does weighting the loss on each answer's first token (--first-weight: the token retrieval decides; the rest of a
# value is mostly copied from where it was found) teach the GLM probe to find the asked key's needle? The same run
# as eval_results/2026-12-03_cpu_probes_answer-positions/glm-continued/run.sh at 1k (the shipped GLM probe continued
# on the development CPU with its own mix, 1k tokens, 8k tokens a step, learning rate 1e-3, 900 s), with the first
# tokens' loss added again four times; then full attention on the same three tasks at 1k (20 samples) and
# first_token.py (teacher-forced first-token accuracy on 40 training-style sequences and 40 niah_multikey_1 prompts).
# Run from the repo root; results beside this script.
set -eu
D=eval_results/2026-12-03_cpu_probe-glm4_moe_lite_first-weight
python -m asynctls_hf.probes.train --arch glm4_moe_lite --init asynctls_hf/probes/checkpoints/glm4_moe_lite \
  --stages 1024 --tokens-per-step 8192 --learning-rate 1e-3 --first-weight 4 --time-budget 900 --device cpu \
  --workers 1 --out /tmp/glm_first_weight > $D/train.log 2>&1
python -m asynctls_hf.eval --model /tmp/glm_first_weight --methods full \
  --tasks niah_multikey_1,niah_single_3,niah_multivalue --context-lengths 1024 --samples 20 --no-progress \
  --out /tmp/glm_first_weight_eval > /dev/null 2>&1
cp /tmp/glm_first_weight_eval/glm_first_weight/results.md $D/eval_1k.md
python $D/first_token.py /tmp/glm_first_weight 2>/dev/null > $D/first_token.txt
