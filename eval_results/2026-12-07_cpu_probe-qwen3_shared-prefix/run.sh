#!/bin/bash
# CPU pilot: the best Qwen3 probe of the GPU runs with ascending lists (more2_key-lists_0.8, EVAL.md "Ascending lists
# at length"; its weights untracked: INIT) continued at 2k (prompts of 1k-2k), --key-order sorted --key-lists 0.8,
# half list recall, 8k tokens a step, rate RATE, for SECONDS, with and without --shared-prefix SHARE (number values
# that begin as an earlier value does), the two side by side (one thread each); then full attention on the
# multi-answer tasks at 2k and 16k, 20 samples, float32, the GPU runs' samples, INIT scored the same way at 2k.
# Usage (repo root): bash eval_results/2026-12-07_cpu_probe-qwen3_shared-prefix/run.sh INIT RATE SECONDS SHARE
# Writes under eval_results/2026-12-07_cpu_probe-qwen3_shared-prefix/: train_RUN.log, training_RUN.json,
# eval_RUN/; weights under /tmp/work_cpu/RUN (not kept).
# sorted_1e-4_1500s_shared-prefix-0.5, by hand (only next_value.py read it): python -m asynctls_hf.probes.train
# --arch qwen3 --init INIT --stages 2048 --key-order sorted --key-lists 0.8 --shared-prefix 0.5 --tokens-per-step 8192
# --list-recall 0.5 --learning-rate 1e-4 --time-budget 1500 --workers 1 --out /tmp/work_cpu/RUN
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
D=eval_results/2026-12-07_cpu_probe-qwen3_shared-prefix; INIT=$1; RATE=$2; BUDGET=$3; SHARE=$4; W=/tmp/work_cpu
mkdir -p $W
score() {  # name model length
  for task in niah_multivalue niah_multiquery; do
    python3 -m asynctls_hf.eval --model $2 --methods full --tasks $task --context-lengths $3 --samples 20 \
      --dtype float32 --no-progress --out $D/eval_$1/${task}_$3 > /dev/null 2>&1
    echo "$1 $task $3: $(grep '^| full' $D/eval_$1/${task}_$3/*/results.md)"
  done
}
for share in 0 $SHARE; do
  NAME=sorted_${RATE}_${BUDGET}s_shared-prefix-$share
  python3 -m asynctls_hf.probes.train --arch qwen3 --init $INIT --stages 2048 --key-order sorted --key-lists 0.8 \
    --shared-prefix $share --tokens-per-step 8192 --list-recall 0.5 --learning-rate $RATE --time-budget $BUDGET \
    --workers 1 --out $W/$NAME 2>&1 | grep -v "shards\|Loading" > $D/train_$NAME.log &
done
score init $INIT 2048
wait
for share in 0 $SHARE; do
  NAME=sorted_${RATE}_${BUDGET}s_shared-prefix-$share
  cp $W/$NAME/training.json $D/training_$NAME.json
  (score $NAME $W/$NAME 2048; score $NAME $W/$NAME 16384) &
done
wait
