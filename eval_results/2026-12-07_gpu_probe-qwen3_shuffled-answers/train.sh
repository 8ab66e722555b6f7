#!/bin/bash
# Qwen3 probes continued at 4k, 16k and 32k with half list recall and every list of values written in an order drawn
# anew (--key-order shuffled, any order right; KEY_ORDER and STAGES below change both), several runs side by side (14 sample workers shared out), for
# SECONDS; then full attention at EVAL_LENGTHS (16k), SAMPLES samples (20), float32, on TASKS (the multi-answer tasks and
# niah_multikey_1), all at once (one that fails beside the others, out of GPU memory, runs again alone).
# Trained in one order, J writes the values in orders of its own and then repeats one; here the answers it is trained
# on start from any order.
# A run: NAME,INIT,RATE[,more training flags]; INIT a checkpoint folder, J for
# eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J (its weights are untracked; they travel with the
# working tree: git show c7fcc39:$J/model.safetensors > $J/model.safetensors).
# Usage (repo root): OUT=dir bash eval_results/2026-12-07_gpu_probe-qwen3_shuffled-answers/train.sh SECONDS RUN...
#   ran 2026-12-07 on an H100 (EVAL.md, "Lists in drawn orders"):
#     train.sh 330 shuffled_1e-4,J,1e-4 shuffled_3e-4,J,3e-4
#     train.sh 330 shuffled_1e-4_more_1e-4,shuffled_1e-4,1e-4 kv8_shuffled_1e-4,J,1e-4,--repeat-kv-heads=4
# Environment: KEY_ORDER (default shuffled) and STAGES (default 4096,16384,32768) for other orders and lengths,
#   SAMPLES (default 20), TASKS (default the multi-answer tasks and niah_multikey_1) and EVAL_LENGTHS (default 16384;
#   32768 runs on an H100 since eval's float32 attention over repeated heads, 2026-12-08) for the evals, all in
#   parallel. A run's flags may hold --arch=glm4_moe_lite for the GLM probe (the last --arch given counts; checked on the CPU);
#   ran 2026-12-07, seventh session, on an H100 (EVAL.md, "Ascending lists at length"; results and the kept
#   checkpoint in eval_results/2026-12-07_gpu_probe-qwen3_sorted-lists/), S = that folder,
#   C = eval_results/2026-12-07_cpu_probe-qwen3_grown/J_sorted_key-lists (J after the 2k CPU pilots of ascending
#   lists; `git show cf94ce4:C/model.safetensors` and the files beside it):
#     KEY_ORDER=sorted train.sh 320 sorted_long_1e-4,C,1e-4,--key-lists=0.5 sorted_long_3e-4,C,3e-4,--key-lists=0.5
#     KEY_ORDER=sorted train.sh 330 sorted_long_1e-4_more,/tmp/work/sorted_long_1e-4,1e-4,--key-lists=0.5
#     KEY_ORDER=sorted train.sh 290 more2_key-lists_0.5,S/sorted_long_1e-4_more,1e-4,--key-lists=0.5 \
#       more2_key-lists_0.8,S/sorted_long_1e-4_more,1e-4,--key-lists=0.8
#   (the second ran on the warm machine the first left, from its checkpoint in /tmp; for the third that checkpoint
#   travelled in the working tree, untracked).
#   ran 2026-12-07, eighth session, on an H100 (EVAL.md, "Shared prefixes at length"; results in
#   eval_results/2026-12-07_gpu_probe-qwen3_shared-prefix-long/), M = S/more2_key-lists_0.8 (its weights left the tree
#   on 2026-12-08: `git show 8aa07be:$M/model.safetensors`):
#     KEY_ORDER=sorted train.sh 320 prefix_0.5,M,1e-4,--key-lists=0.8,--shared-prefix=0.5 \
#       prefix_0.8,M,1e-4,--key-lists=0.8,--shared-prefix=0.8
#   ran 2026-12-08, ninth session, on an H100 (EVAL.md, "Far keys"; results in
#   eval_results/2026-12-08_gpu_probe-qwen3_far-keys/), the second on the warm machine the first left:
#     KEY_ORDER=sorted SAMPLES=40 train.sh 320 far_0.8,M,1e-4,--key-lists=0.8,--far-keys=0.8 \
#       control,M,1e-4,--key-lists=0.8
#     KEY_ORDER=sorted SAMPLES=40 train.sh 320 far_0.8_more,/tmp/work/far_0.8,1e-4,--key-lists=0.8,--far-keys=0.8 \
#       control_more,/tmp/work/control,1e-4,--key-lists=0.8
# Back: $OUT/NAME.tar (the checkpoint), $OUT/train_NAME.log, $OUT/eval_NAME.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-07_gpu_probe-qwen3_shuffled-answers; J=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/J
W=/tmp/work; BUDGET=$1; shift; WORKERS=$((14 / $#)); KEY_ORDER=${KEY_ORDER:-shuffled}; STAGES=${STAGES:-4096,16384,32768}
SAMPLES=${SAMPLES:-20}; EVAL_LENGTHS=${EVAL_LENGTHS:-16384}
TASKS=${TASKS:-niah_multivalue niah_multiquery niah_multikey_1}
mkdir -p $W
for run in "$@"; do
  IFS=, read -r NAME INIT RATE FLAGS <<< "$run"
  case $INIT in J) INIT=$J ;; */*) ;; *) INIT=$D/$INIT ;; esac
  ( timeout $((BUDGET + 60)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $INIT --key-order $KEY_ORDER \
      --stages $STAGES --list-recall 0.5 --learning-rate $RATE --time-budget $BUDGET --workers $WORKERS \
      ${FLAGS//,/ } --out $W/$NAME > $W/train_$NAME.log 2>&1
    echo "[$SECONDS s] train $NAME rc=$?"; grep -v "shards\|Loading" $W/train_$NAME.log > $OUT/train_$NAME.log
    grep "parameters\|stage\|saved" $OUT/train_$NAME.log; tar cf $OUT/$NAME.tar -C $W $NAME ) &
done
wait
score() {  # name task length
  timeout 240 python3 -m asynctls_hf.eval --model $W/$1 --methods full --tasks $2 --context-lengths $3 \
    --samples $SAMPLES --dtype float32 --no-progress --out /tmp/eval/$1/${2}_$3 > /tmp/eval/$1/${2}_$3.log 2>&1
}
for run in "$@"; do
  NAME=${run%%,*}; E=/tmp/eval/$NAME; rm -rf $E; mkdir -p $E
  for task in $TASKS; do for L in ${EVAL_LENGTHS//,/ }; do score $NAME $task $L & done; done
  wait
  for task in $TASKS; do for L in ${EVAL_LENGTHS//,/ }; do
    ls $E/${task}_$L/*/results.md > /dev/null 2>&1 || score $NAME $task $L
  done; done
  echo "[$SECONDS s] scored $NAME"
  for f in $E/*/*/results.md; do echo "$f: $(grep '^| full' $f)"; done
  (cd $E && tar cf $OUT/eval_$NAME.tar .)
done
