#!/bin/bash
# The offload issue's step ratio at a trained model's hit rate: 36 Qwen3-8B layers with their dense GEMMs
# (--dense-layer), queries drifting at 0.3 (token hit rate 0.82-0.87 on the CPU check, the shipped Qwen3 probe's is
# 0.853), resident vs tokens exact vs tokens lag 1, graphed; then exact mode before this session's change (picks
# sorted) at batch 1 for comparison; GPU tests of the offload engine and the offloaded cache first.
# devrun/before holds that earlier package: git archive 6f4a725 asynctls_hf | tar x -C devrun/before
# (carried to the device with the working tree: run's carry ["devrun"]).
set -u
export PYTHONUNBUFFERED=1
ROOT=$PWD
B="python3 -m asynctls_hf bench offload-decode --attention gqa --layers 36 --dense-layer --drift 0.3 --steps 24 --warmup 4"
PYTHONPATH=$ROOT timeout 120 python3 -m pytest -q -m gpu tests/offload tests/cache/test_offloaded_gpu.py 2>&1 | tail -3
PYTHONPATH=$ROOT timeout 170 $B --placements resident,tokens,tokens-lag1 --context-lengths 48k,64k,96k --batch 1 \
  --out $OUT/b1 2>&1 | grep -v "^placement="
PYTHONPATH=$ROOT timeout 150 $B --placements resident,tokens,tokens-lag1 --context-lengths 48k,96k --batch 4 \
  --out $OUT/b4 2>&1 | grep -v "^placement="
cd devrun/before && PYTHONPATH=$PWD timeout 90 $B --placements tokens --context-lengths 48k,96k --batch 1 \
  --out $OUT/sorted_b1 2>&1 | grep -v "^placement="
ls -R $OUT
