#!/bin/bash
# The GLM probe at 32k on the four single-answer tasks with 40 samples, float32: full attention (one process, the
# tasks in turn: float32 attention over 32k keys needs its memory), asynctls at 1024 and 512 with the default labels
# (64 of 192 channels since 2026-11-30) and quest at 512, one process per (method, budget, task); 13 side by side
# within 380 s; results $OUT/glm32k.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=/tmp/glm32k; mkdir -p $W
one() {  # method budget tasks
  local name=$1_$2_${3//,/-}
  python3 -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite --methods $1 --budgets $2 \
    --tasks $3 --context-lengths 32768 --samples 40 --dtype float32 --no-progress --out $W/$name > $W/$name.log 2>&1
  echo "$name rc=$? $(date +%T)"
}
export -f one; export W
{
  echo "full 1024 niah_single_1,niah_single_2,niah_single_3,niah_multikey_1"
  for task in niah_single_1 niah_single_2 niah_single_3 niah_multikey_1; do
    echo "asynctls 1024 $task"; echo "asynctls 512 $task"; echo "quest 512 $task"
  done
} > $W/jobs.txt
date +%T
timeout 380 xargs -P 13 -L 1 bash -c 'one "$@"' _ < $W/jobs.txt
for f in $W/*/*/results.md; do echo "== $f"; grep "^| [a-z]" $f | grep -v method; done
cd $W && tar cf $OUT/glm32k.tar --exclude='*.png' . ; ls -la $OUT
