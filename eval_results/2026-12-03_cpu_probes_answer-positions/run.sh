#!/bin/bash
# The shipped probes' teacher-forced answer positions at 1k tokens (development CPU), and the shipped Qwen3 probe's
# multi-answer scores at 1k and 4k. Run from the repo root.
set -eu
D=eval_results/2026-12-03_cpu_probes_answer-positions
python -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/qwen3 --methods full \
  --tasks niah_multivalue,niah_multiquery --context-lengths 1024,4096 --samples 20 --out /tmp/mv_short
for spec in "qwen3 niah_multivalue" "qwen3 niah_multiquery" "qwen3 niah_multikey_1" "glm4_moe_lite niah_multikey_1"; do
  set -- $spec
  python $D/answer_positions.py asynctls_hf/probes/checkpoints/$1 1024 $2 > $D/${1}_${2}_1k.txt
done
python $D/answer_positions.py asynctls_hf/probes/checkpoints/qwen3 1024 niah_multiquery --keyed \
  > $D/qwen3_niah_multiquery_1k_keyed.txt
