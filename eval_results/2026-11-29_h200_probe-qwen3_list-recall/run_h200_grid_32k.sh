#!/bin/bash
# asynctls and quest at 512/1024/2048 on the continued Qwen3 probe (devrun/ckpt/qwen3) at 32k, 10 samples, float32.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
W=/tmp/work; mkdir -p $W/eval
TASKS=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery
one() {  # method budget length
  timeout 290 python3 -m asynctls_hf.eval --model devrun/ckpt/qwen3 --methods $1 --budgets $2 --tasks $TASKS \
    --context-lengths $3 --samples 10 --dtype float32 --no-progress --out $W/eval/$1_$2_$3 \
    > $W/eval/$1_$2_$3.log 2>&1
  echo "$1 $2 $3 rc=$?"
}
for budget in 512 1024 2048; do one asynctls $budget 32768 & one quest $budget 32768 & done
wait
cd $W && tar cf $OUT/grid32k.tar eval; ls -la $OUT
