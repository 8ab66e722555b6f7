#!/bin/bash
# The shipped probes on the six needle tasks with 40 samples (the first 10 are the earlier grids' samples), float32:
# full attention, asynctls at budgets 1024 and 512, quest at 512 (the cells the probe issue's goals compare), for
# the Qwen3 probe at 16k and 32k and the GLM probe at 16k. One process per (model, method, budget, length), 12 at a
# time, within 420 s; results $OUT/precision.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=/tmp/precision; mkdir -p $W
one() {  # model method budget length
  local model=$1 method=$2 budget=$3 length=$4
  local name=${model}_${method}_${budget}_${length}
  python3 -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/$model --methods $method --budgets $budget \
    --tasks niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery \
    --context-lengths $length --samples 40 --dtype float32 --no-progress --out $W/$name > $W/$name.log 2>&1
  echo "$name rc=$? $(date +%T)"
}
export -f one; export W
{
  for job in "qwen3 16384" "qwen3 32768" "glm4_moe_lite 16384"; do
    set -- $job
    echo "$1 full 1024 $2"; echo "$1 asynctls 1024 $2"; echo "$1 asynctls 512 $2"; echo "$1 quest 512 $2"
  done
} > $W/jobs.txt
date +%T
timeout 420 xargs -P 12 -L 1 bash -c 'one "$@"' _ < $W/jobs.txt
for f in $W/*/*/results.md; do echo "== $f"; cat $f; done
cd $W && tar cf $OUT/precision.tar --exclude='*.png' . ; ls -la $OUT
