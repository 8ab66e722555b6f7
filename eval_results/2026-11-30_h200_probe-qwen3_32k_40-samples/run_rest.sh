#!/bin/bash
# What run.sh left (the same settings): asynctls at 512 (both halves ran out of GPU memory at their start beside
# float32 full attention) and full attention's niah_multiquery (cut by run.sh's 480 s box). Full attention first,
# beside one asynctls half, then the other half; within 380 s; results $OUT/qwen3_32k_rest.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=/tmp/qwen3_32k; mkdir -p $W
one() {  # method budget tasks name
  timeout 370 python3 -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/qwen3 --methods $1 --budgets $2 \
    --tasks $3 --context-lengths 32768 --samples 40 --dtype float32 --no-progress --out $W/$4 > $W/$4.log 2>&1
  echo "$4 rc=$? $(date +%T)"
}
date +%T
{ one full 1024 niah_multiquery full_multiquery; one asynctls 512 niah_multikey_1,niah_multivalue,niah_multiquery \
  asynctls_512_other; } &
one asynctls 512 niah_single_1,niah_single_2,niah_single_3 asynctls_512_single &
wait
for f in $W/*/*/results.md; do echo "== $f"; tail -1 $f; done
cd $W && tar cf $OUT/qwen3_32k_rest.tar --exclude='*.png' . ; ls -la $OUT
