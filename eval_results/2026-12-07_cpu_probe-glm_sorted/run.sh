#!/bin/bash
# CPU pilot: the shipped GLM probe (Q) continued at 2k (prompts of 1k-2k) with every list of values in ascending
# order and several keys' lists restated (--key-order sorted --key-lists 0.5), half list recall, 8k tokens a step,
# for SECONDS; full attention on the multi-answer tasks at 2k, 20 samples, float32, before and after. The Qwen3
# probe's pilot of the same recipe: EVAL.md, "Lists in ascending order".
# Usage (repo root): bash eval_results/2026-12-07_cpu_probe-glm_sorted/run.sh RATE [SECONDS (900)] [INIT]
# INIT: a checkpoint to continue (default the shipped GLM probe); RUN is Q_RATE_SECONDSs, or INIT's name + _more.
# Writes under eval_results/2026-12-07_cpu_probe-glm_sorted/: train_RUN.log, training_RUN.json, eval_RUN/; the
# weights under /tmp/work_cpu/RUN (not kept).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-07_cpu_probe-glm_sorted; Q=asynctls_hf/probes/checkpoints/glm4_moe_lite
RATE=$1; BUDGET=${2:-900}; INIT=${3:-$Q}; W=/tmp/work_cpu; mkdir -p $W
source eval_results/2026-12-07_cpu_probe-qwen3_grown/score.sh  # score NAME MODEL
[ -d $D/eval_Q ] || score Q $Q
NAME=Q_${RATE}_${BUDGET}s; [ $INIT != $Q ] && NAME=$(basename $INIT)_more
python3 -m asynctls_hf.probes.train --arch glm4_moe_lite --init $INIT --stages 2048 --key-order sorted \
  --key-lists 0.5 --tokens-per-step 8192 --list-recall 0.5 --learning-rate $RATE --time-budget $BUDGET --workers 1 \
  --out $W/$NAME 2>&1 | grep -v "shards\|Loading" > $D/train_$NAME.log
cp $W/$NAME/training.json $D/training_$NAME.json
score $NAME $W/$NAME
