#!/bin/bash
# The shipped GLM probe with 64 label channels (of its 192; the default is 32), asynctls at budget 1024 on
# niah_single_1, 2 and 3 and at 512 on niah_single_1, 16k, float32, 40 samples, on the development CPU (2 cores),
# two processes. Run from the repository root; results beside this script.
set -u
D=eval_results/2026-11-30_cpu_probe-glm4_moe_lite_label-channels-64
run() {  # out budget tasks
  OMP_NUM_THREADS=1 python -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite \
    --methods asynctls --budgets $2 --tasks $3 --context-lengths 16384 --samples 40 --dtype float32 \
    --device cpu --no-progress --label-channels 64 --out $D/$1
}
run budget-1024_a 1024 niah_single_1,niah_single_3 &
{ run budget-1024_b 1024 niah_single_2; run budget-512 512 niah_single_1; } &
wait
# Then niah_multikey_1 at budgets 1024 and 512 (started the same day once the above had finished).
run budget-1024_multikey 1024 niah_multikey_1 &
run budget-512_multikey 512 niah_multikey_1 &
wait
