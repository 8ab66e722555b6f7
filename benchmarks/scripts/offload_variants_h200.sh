#!/bin/bash
# Four packages, alternated in one call (batch 1: before, tiled, rowpair, inline; batch 4:
# inline, rowpair, tiled, before), each process measuring the resident step too: before = git archive
# 6e66126; tiled = dbaf8bb (copy kernel over tiles of 16 token rows, keys and values in one launch; lag-1 sort with
# successors in one launch; stamped circular plan); rowpair = tiled with one row per work item (keys and values
# still in one launch); inline = tiled with exact mode's plan and copies on the compute stream. The offload-decode
# bench at a trained model's hit rate (36 Qwen3-8B layers with their GEMMs, drift 0.3), 48k. GPU tests of the
# offload engine and offloaded cache first (the inline package).
set -u
export PYTHONUNBUFFERED=1
ROOT=$PWD
B="python3 -m asynctls_hf bench offload-decode --attention gqa --layers 36 --dense-layer --drift 0.3 --steps 24 --warmup 4"
PYTHONPATH=$ROOT timeout 100 python3 -m pytest -q -m gpu tests/offload/test_engine.py tests/cache/test_offloaded_gpu.py 2>&1 | tail -2
bench() {  # package_root batch name
  (cd $1 && PYTHONPATH=$PWD timeout 60 $B --placements resident,tokens,tokens-lag1 --context-lengths 48k \
    --batch $2 --out $OUT/$3 2>&1 | grep "^| \(resident\|offload\)" | sed "s/^/$3 /")
}
date +%T
for v in before tiled rowpair inline; do bench $([ $v = inline ] && echo $ROOT || echo devrun/$v) 1 ${v}_b1_r1; done
for v in inline rowpair tiled before; do bench $([ $v = inline ] && echo $ROOT || echo devrun/$v) 4 ${v}_b4_r1; done
date +%T
cd $OUT && tar cf results.tar before_* tiled_* rowpair_* inline_* && rm -r before_* tiled_* rowpair_* inline_*; ls -la $OUT
