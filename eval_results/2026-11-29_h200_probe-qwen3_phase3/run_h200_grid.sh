#!/bin/bash
# The continued GLM probe (devrun/ckpt/glm_v2) on the six needle tasks at 16k and 32k, 10 samples, float32: full
# attention and the five sparse methods at budgets 512/1024/2048 (attention recall over 8 decode steps), asynctls
# with label_channels=96 at 1024; and the Qwen3 probe's phase 3 (devrun/ckpt/qwen3_v3) with full attention.
# One process per (model, method, budget, length), 12 at a time, in priority order, within 530 s; results
# $OUT/grid.tar.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=/tmp/grid; mkdir -p $W
one() {  # model method budget length [extra...]
  local model=$1 method=$2 budget=$3 length=$4; shift 4
  local name=${model}_${method}_${budget}_${length}${1:+_lc96}
  python3 -m asynctls_hf.eval --model devrun/ckpt/$model --methods $method --budgets $budget \
    --tasks niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery \
    --context-lengths $length --samples 10 --dtype float32 --no-progress --fidelity-steps 8 --out $W/$name "$@" \
    > $W/$name.log 2>&1
  echo "$name rc=$?"
}
export -f one; export W
{
  for length in 32768 16384; do echo "glm_v2 full 1024 $length"; done
  for method in asynctls quest; do for length in 32768 16384; do for budget in 512 1024 2048; do
    echo "glm_v2 $method $budget $length"; done; done; done
  for method in double-sparsity token-topk streaming; do for length in 32768 16384; do
    echo "glm_v2 $method 1024 $length"; done; done
  for length in 32768 16384; do echo "glm_v2 asynctls 1024 $length --label-channels 96"; done
  for length in 16384 32768; do echo "qwen3_v3 full 1024 $length"; done
  for method in double-sparsity token-topk streaming; do for length in 16384 32768; do for budget in 512 2048; do
    echo "glm_v2 $method $budget $length"; done; done; done
} > $W/jobs.txt
timeout 530 xargs -P 12 -L 1 bash -c 'one "$@"' _ < $W/jobs.txt
grep -h "^| full" $W/*full*/*/results.md
cd $W && tar cf $OUT/grid.tar --exclude='*.png' . ; ls -la $OUT
