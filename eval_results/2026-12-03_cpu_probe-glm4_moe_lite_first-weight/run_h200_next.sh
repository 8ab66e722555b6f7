#!/bin/bash
# The GLM probe trained again from scratch (the shipped recipe's first phase: the defaults, stages 512 to 32k, 420 s
# here), two runs side by side (7 sample workers each), both with their stages gated on the first answer tokens'
# accuracy (--gate-metric first_accuracy: the shipped probe passed the answer-token gate by copying, without
# retrieving by key; EVAL.md, "Why the GLM probe does not find the asked key"): M with that alone, N also with
# --first-weight 4 and --answer-frame 0.5. Then first_token.py on each (does it retrieve?) and full attention on
# niah_multikey_1 and niah_single_3 at 1k and 16k (20 samples).
# Two device calls on one warm machine (/tmp persists between them; together they need more than one 600 s box):
#   OUT=dir bash .../run_h200_next.sh train   about 480 s. Back: $OUT/{M,N}/ (weights, training.json) and
#                                             $OUT/logs.tar (training logs, first_token_{M,N}.txt)
#   OUT=dir bash .../run_h200_next.sh eval    about 200 s. Back: $OUT/eval_{M,N}.tar
# The device returns at most 8 files. Ran once as one call (H200, 2026-12-03): the trainings and first_token.py
# finished, the evals did not (the 600 s box), and the files it returned were lost before they were read.
# The train part ran again on 2026-12-06 (H100; eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/
# has its files and what followed): neither run left the 512-token stage in 420 s, first_token.py did not finish
# inside the box, and the eval part was not run.
# Usage (repo root): OUT=dir bash eval_results/2026-12-03_cpu_probe-glm4_moe_lite_first-weight/run_h200_next.sh PART
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
G=eval_results/2026-12-03_cpu_probe-glm4_moe_lite_first-weight
E=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/eval.sh
train() {  # name, extra flags
  local name=$1; shift
  timeout 470 python3 -m asynctls_hf.probes.train --arch glm4_moe_lite --gate-metric first_accuracy \
    --time-budget 420 --workers 7 --out /tmp/work/$name "$@" > $OUT/train_$name.log 2>&1
  echo "[$SECONDS s] train $name rc=$?"; grep -v shards $OUT/train_$name.log | tail -2
  mkdir -p $OUT/$name && cp /tmp/work/$name/model.safetensors /tmp/work/$name/training.json $OUT/$name/
  python3 $G/first_token.py /tmp/work/$name > $OUT/first_token_$name.txt 2>/dev/null
}
case ${1:?give the part to run: train or eval} in
  train)
    train M &
    train N --first-weight 4 --answer-frame 0.5 &
    wait
    cd $OUT && tar cf logs.tar train_M.log train_N.log first_token_M.txt first_token_N.txt \
      && rm train_?.log first_token_?.txt ;;
  eval)
    MODEL=/tmp/work/M bash $E niah_multikey_1@1024,niah_single_3@1024,niah_multikey_1@16384 niah_single_3@16384 &
    MODEL=/tmp/work/N bash $E niah_multikey_1@1024,niah_single_3@1024,niah_multikey_1@16384 niah_single_3@16384 &
    wait ;;
  *) echo "unknown part $1: train or eval" >&2; exit 2 ;;
esac
