#!/bin/bash
# The GLM probe's two multi-answer tasks at 16k with 40 samples, float32: full attention, asynctls at budgets 1024
# and 512 with the default labels (64 of the probe's 192 key channels since 2026-11-30), quest at 512. One process
# per (method, budget, task), 8 side by side, within 400 s; results $OUT/multi-answer.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=/tmp/multi; mkdir -p $W
one() {  # method budget task
  local name=$1_$2_$3
  python3 -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite --methods $1 --budgets $2 \
    --tasks $3 --context-lengths 16384 --samples 40 --dtype float32 --no-progress --out $W/$name > $W/$name.log 2>&1
  echo "$name rc=$? $(date +%T)"
}
export -f one; export W
for task in niah_multivalue niah_multiquery; do
  echo "full 1024 $task"; echo "asynctls 1024 $task"; echo "asynctls 512 $task"; echo "quest 512 $task"
done > $W/jobs.txt
date +%T
timeout 400 xargs -P 8 -L 1 bash -c 'one "$@"' _ < $W/jobs.txt
for f in $W/*/*/results.md; do echo "== $f"; cat $f; done
cd $W && tar cf $OUT/multi-answer.tar --exclude='*.png' . ; ls -la $OUT
