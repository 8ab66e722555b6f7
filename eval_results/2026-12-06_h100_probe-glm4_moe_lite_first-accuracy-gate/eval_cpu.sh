#!/bin/bash
# Full attention on the needle tasks the H100 calls did not run, on the development CPU (2 cores), float32, 20
# samples, one task at a time (about 6 minutes each at 16k). METHODS (default full) and BUDGETS (default 1024) pick
# other methods: Q's niah_multikey_1 at 16k ran with METHODS=asynctls,quest BUDGETS=512,1024, then with
# METHODS=token-topk, then METHODS=asynctls BUDGETS=2048 (Q/ then held the files of asynctls_hf/probes/checkpoints/glm4_moe_lite, which are Q's; copy
# them there to run it again). Back: eval_cpu_NAME/TASK_LENGTH/ beside this script (results.md: the last run's).
# asynctls with other labels ran as that command with --methods asynctls --budgets 1024 and --label-channels 192
# --label-bits 8 (eval_cpu_Q_exact-labels/) or --label-channels 96 (eval_cpu_Q_labels-96/; its budget-512 JSON came
# from the same command with --budgets 512 and --model a copy of Q in /tmp/Q).
# Usage (repo root): [METHODS=m,m BUDGETS=b,b] bash THIS_FOLDER/eval_cpu.sh NAME TASK@LENGTH...
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate; NAME=$1; shift
for cell in "$@"; do
  task=${cell%@*} length=${cell#*@}
  python3 -m asynctls_hf.eval --model $D/$NAME --methods ${METHODS:-full} --budgets ${BUDGETS:-1024} --tasks $task \
    --context-lengths $length --samples 20 --dtype float32 --no-progress --out $D/eval_cpu_$NAME/${task}_$length > /tmp/eval_cpu_${NAME}_$cell.log 2>&1
  echo "[$SECONDS s] $NAME $cell rc=$?"; grep '^| ' $D/eval_cpu_$NAME/${task}_$length/$NAME/results.md
done
