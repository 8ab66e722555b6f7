#!/bin/bash
# CPU pilot of growing J (eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J) to 8 layers: J and the
# grown J continued at 2k (prompts of 1k-2k), half list recall, 8k tokens a step, for SECONDS each, then full
# attention on the multi-answer tasks at 2k, 20 samples, float32; J itself scored the same way.
# Usage (repo root): bash eval_results/2026-12-07_cpu_probe-qwen3_grown/run.sh RATE [SECONDS (900)] [STEPS] [SCALE]
# With STEPS, only the grown J runs, stopped after STEPS steps (RUN: grown_J_RATE_STEPS-steps): J continued took 263
# steps in 900 s and the grown J 139, so `run.sh 3e-4 1700 263` gives the grown J as many steps in about as long a
# schedule. SCALE: the added layers' rate as a multiple of RATE (--grown-rate-scale; RUN gets _scale-SCALE).
# Environment: RUNS="none" continues J alone, "0,1,2,3" the grown J alone; FIRST_WEIGHT=W adds --first-weight W
# (RUN gets _first-W): `RUNS=none FIRST_WEIGHT=4 bash run.sh 3e-4 900`; FLAG=F adds the training flag --F (RUN gets
# _F; FLAG="key-lists 0.5" gives _key-lists_0.5): `RUNS=none FLAG=any-key-order bash run.sh 3e-4 900`.
# A SECONDS other than 900 without STEPS gives RUN _SECONDSs: `RUNS=none FLAG=keyed-answers bash run.sh 3e-4 2700`.
# Writes under eval_results/2026-12-07_cpu_probe-qwen3_grown/: RUN/ (weights not kept), train_RUN.log, eval_RUN/.
# grown_J_3e-4_263-steps_continued: that run's checkpoint continued by hand for 1500 s more with the same flags
# (python -m asynctls_hf.probes.train --arch qwen3 --init /tmp/work_cpu/grown_J_3e-4_263-steps --stages 2048
# --tokens-per-step 8192 --list-recall 0.5 --learning-rate 3e-4 --time-budget 1500 --workers 1), scored as here.
# J_3e-4_key-order_sorted_continued (2026-12-07, sixth session): `RUNS=none FLAG="key-order sorted" bash run.sh 3e-4
# 900`'s checkpoint continued by hand the same way with --key-order sorted for 1800 s, scored as here and on
# niah_multikey_1; J_3e-4_key-order_sorted_continued_key-lists_0.5: that one continued for 1500 s more with
# --key-lists 0.5 added, and _more: that one 1200 s more with the same flags. query_order.py reads the order of
# their answers.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-07_cpu_probe-qwen3_grown; J=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J
RATE=$1; BUDGET=${2:-900}; STEPS=${3:-}; SCALE=${4:-}; W=/tmp/work_cpu; mkdir -p $W
source eval_results/2026-12-07_cpu_probe-qwen3_grown/score.sh  # score NAME MODEL
[ -d $D/eval_J ] || score J $J
FIRST_WEIGHT=${FIRST_WEIGHT:-}; FLAG=${FLAG:-}
RUNS=${RUNS:-none 0,1,2,3}; [ -n "$STEPS" ] && RUNS=0,1,2,3  # none: J continued as it is; 0,1,2,3: J grown
for grow in $RUNS; do
  [ $grow = none ] && grow=""
  NAME=${grow:+grown_}J_$RATE${STEPS:+_$STEPS-steps}${SCALE:+_scale-$SCALE}${FIRST_WEIGHT:+_first-$FIRST_WEIGHT}${FLAG:+_${FLAG// /_}}
  [ $BUDGET != 900 ] && [ -z "$STEPS" ] && NAME=${NAME}_${BUDGET}s
  python3 -m asynctls_hf.probes.train --arch qwen3 --init $J ${grow:+--grow-after $grow} --stages 2048 \
    ${STEPS:+--max-steps $STEPS} ${SCALE:+--grown-rate-scale $SCALE} \
    ${FIRST_WEIGHT:+--first-weight $FIRST_WEIGHT} ${FLAG:+--$FLAG} --tokens-per-step 8192 --list-recall 0.5 --learning-rate $RATE \
    --time-budget $BUDGET --workers 1 --out $W/$NAME 2>&1 | grep -v "shards\|Loading" > $D/train_$NAME.log
  cp $W/$NAME/training.json $D/training_$NAME.json
  score $NAME $W/$NAME
done
