#!/bin/bash
# Full attention on the needle tasks the H100 calls did not run, on the development CPU (2 cores), float32, 20
# samples, one task at a time (about 6 minutes each at 16k). Back: eval_cpu_NAME/TASK_LENGTH/ beside this script.
# Usage (repo root): bash eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/eval_cpu.sh NAME TASK@LENGTH...
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate; NAME=$1; shift
for cell in "$@"; do
  task=${cell%@*} length=${cell#*@}
  python3 -m asynctls_hf.eval --model $D/$NAME --methods full --tasks $task --context-lengths $length --samples 20 \
    --dtype float32 --no-progress --out $D/eval_cpu_$NAME/${task}_$length > /tmp/eval_cpu_${NAME}_$cell.log 2>&1
  echo "[$SECONDS s] $NAME $cell rc=$? $(grep '^| full' $D/eval_cpu_$NAME/${task}_$length/$NAME/results.md)"
done
