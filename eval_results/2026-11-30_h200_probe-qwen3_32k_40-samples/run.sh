#!/bin/bash
# The shipped Qwen3 probe at 32k with 40 samples per task (the first 10 are the earlier grid's), float32, the cells
# the probe issue's goals compare: full attention (one process, the six tasks), asynctls at 1024 and 512 and quest
# at 512 (each in two processes of three tasks). Seven processes side by side within 480 s (float32 full attention
# at 32k asks 31.7 GiB, so only one such process); results $OUT/qwen3_32k.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=/tmp/qwen3_32k; mkdir -p $W
one() {  # method budget tasks name
  python3 -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/qwen3 --methods $1 --budgets $2 --tasks $3 \
    --context-lengths 32768 --samples 40 --dtype float32 --no-progress --out $W/$4 > $W/$4.log 2>&1
  echo "$4 rc=$? $(date +%T)"
}
export -f one; export W
SINGLE=niah_single_1,niah_single_2,niah_single_3
OTHER=niah_multikey_1,niah_multivalue,niah_multiquery
{
  echo "full 1024 $SINGLE,$OTHER full"
  for cell in "asynctls 1024" "asynctls 512" "quest 512"; do
    set -- $cell
    echo "$1 $2 $SINGLE ${1}_${2}_single"; echo "$1 $2 $OTHER ${1}_${2}_other"
  done
} > $W/jobs.txt
date +%T
timeout 480 xargs -P 7 -L 1 bash -c 'one "$@"' _ < $W/jobs.txt
for f in $W/*/*/results.md; do echo "== $f"; tail -3 $f; done
cd $W && tar cf $OUT/qwen3_32k.tar --exclude='*.png' . ; ls -la $OUT
