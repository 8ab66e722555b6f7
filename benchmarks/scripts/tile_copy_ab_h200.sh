#!/bin/bash
# A/B of the package before (devrun/before: git archive 6e66126 asynctls_hf) and after the tiled copy kernel, the
# fused lag-1 sort and the stamped circular plan, alternated (batch 1: before, after, after, before; batch 4:
# after, before) so that drift of the machine over the call does not favour either; each process measures the
# resident step too. The offload-decode bench at a trained model's hit rate (36 Qwen3-8B layers with their GEMMs,
# drift 0.3), 48k and 96k.
set -u
export PYTHONUNBUFFERED=1
ROOT=$PWD
B="python3 -m asynctls_hf bench offload-decode --attention gqa --layers 36 --dense-layer --drift 0.3 --steps 24 --warmup 4"
bench() {  # package_root batch name
  (cd $1 && PYTHONPATH=$PWD timeout 90 $B --placements resident,tokens,tokens-lag1 --context-lengths 48k,96k \
    --batch $2 --out $OUT/$3 2>&1 | grep "^| \(resident\|offload\)" | sed "s/^/$3 /")
}
date +%T
bench devrun/before 1 before_b1_r1
bench $ROOT 1 after_b1_r1
bench $ROOT 1 after_b1_r2
bench devrun/before 1 before_b1_r2
bench $ROOT 4 after_b4_r1
bench devrun/before 4 before_b4_r1
date +%T
cd $OUT && tar cf results.tar before_* after_* && rm -r before_* after_*; ls -la $OUT
