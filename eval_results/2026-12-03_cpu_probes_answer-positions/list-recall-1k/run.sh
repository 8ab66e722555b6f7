#!/bin/bash
# The shipped Qwen3 probe continued on the development CPU (2 cores) for 400 steps at 1k tokens, every recall
# sequence a list-recall one; then its full-attention scores at 1k (20 samples) and the teacher-forced answer
# positions. Run from the repo root.
set -eu
python -m asynctls_hf.probes.train --arch qwen3 --init asynctls_hf/probes/checkpoints/qwen3 --stages 1024 \
  --tokens-per-step 8192 --list-recall 1.0 --learning-rate 1e-3 --time-budget 1500 --device cpu --workers 1 \
  --out /tmp/p_lr1k
python -m asynctls_hf.eval --model /tmp/p_lr1k --methods full \
  --tasks niah_multivalue,niah_multiquery,niah_single_2,niah_multikey_1 --context-lengths 1024 --samples 20 \
  --out /tmp/eval_lr1k
D=eval_results/2026-12-03_cpu_probes_answer-positions
for task in niah_multivalue niah_multiquery; do
  python $D/answer_positions.py /tmp/p_lr1k 1024 $task > $D/list-recall-1k/${task}_1k.txt
done
python -m asynctls_hf.eval --model /tmp/p_lr1k --methods full --tasks niah_multivalue,niah_multiquery,niah_single_2 \
  --context-lengths 4096 --samples 20 --out /tmp/eval_lr1k
python -m asynctls_hf.eval --model /tmp/p_lr1k --methods full --tasks niah_multivalue,niah_multiquery \
  --context-lengths 16384 --samples 20 --out /tmp/eval_lr1k
cp -r /tmp/eval_lr1k/p_lr1k $D/list-recall-1k/eval
