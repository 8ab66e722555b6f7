#!/bin/bash
# The GLM probe's 32k samples asynctls @ 512 (default labels) lost and quest @ 512 kept, regenerated on the
# development CPU with wider labels, exact labels, and candidates ranked by their best head (head_max.py); then
# that ranking over 40 samples of four tasks at 16k, budget 512. Two processes at a time (2 cores). Run from the
# repository root; results beside this script.
set -u
D=eval_results/2026-11-30_cpu_probe-glm4_moe_lite_token-scoring
export PYTHONPATH=. OMP_NUM_THREADS=1
python $D/lost_samples.py --tasks niah_single_1,niah_single_2 --out $D > $D/log_single.txt 2>&1 &
python $D/lost_samples.py --tasks niah_multikey_1 --out $D > $D/log_multikey.txt 2>&1 &
wait
for task in niah_single_1 niah_single_2; do
  python $D/lost_samples.py --tasks $task --label-channels 192 --label-bits 16 --out $D > $D/log_exact_${task#niah_}.txt 2>&1 &
done
wait
for task in niah_single_1 niah_single_2; do
  python $D/lost_samples.py --tasks $task --label-channels 64 --head-max --out $D > $D/log_headmax_${task#niah_}.txt 2>&1 &
done
wait
for job in "a niah_single_1,niah_single_2" "b niah_single_3,niah_multikey_1"; do
  set -- $job
  python $D/head_max_eval.py --model asynctls_hf/probes/checkpoints/glm4_moe_lite --methods asynctls --budgets 512 \
    --tasks $2 --context-lengths 16384 --samples 40 --dtype float32 --device cpu --no-progress \
    --out $D/head_max_16k_512_$1 > $D/log_head_max_16k_$1.txt 2>&1 &
done
wait
# Then labels on half the key (96 of 192 channels) at 16k, budget 512, on the two tasks the earlier 96-channel runs
# (eval_results/2026-11-30_cpu_probe-glm4_moe_lite_label-channels/) did not cover.
for task in niah_single_2 niah_multikey_1; do
  python -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite --methods asynctls --budgets 512 \
    --tasks $task --context-lengths 16384 --samples 40 --dtype float32 --device cpu --no-progress \
    --label-channels 96 --out $D/labels_96_16k_512_$task > $D/log_labels_96_16k_$task.txt 2>&1 &
done
wait
