#!/bin/bash
# The copy kernel over tiles of rows (keys and values in one launch), the lag-1 ids sorted with their successors in
# one launch, and the circular plan without its marks row, against the package before them (devrun/before: git
# archive 6e66126 asynctls_hf), at a trained model's hit rate (the offload-decode bench, 36 Qwen3-8B layers with
# their GEMMs, drift 0.3), batch 1 and 4, 48k and 96k; the ops', offload's and graphs' GPU tests first.
set -u
export PYTHONUNBUFFERED=1
ROOT=$PWD
B="python3 -m asynctls_hf bench offload-decode --attention gqa --layers 36 --dense-layer --drift 0.3 --steps 24 --warmup 4"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
PYTHONPATH=$ROOT timeout 90 python3 -m pytest -q tests/ops/test_copy_rows.py tests/ops/test_resident_plan.py 2>&1 | tail -2
PYTHONPATH=$ROOT timeout 100 python3 -m pytest -q -m gpu tests/offload tests/cache/test_offloaded_gpu.py 2>&1 | tail -2
for batch in 1 4; do
  PYTHONPATH=$ROOT timeout 100 $B --placements resident,tokens,tokens-lag1 --context-lengths 48k,96k --batch $batch \
    --profile 3 --out $OUT/after_b$batch 2>&1 | grep -v "^placement=\|UserWarning\|_warn_once"
done
cd devrun/before
for batch in 1 4; do
  PYTHONPATH=$PWD timeout 80 $B --placements tokens,tokens-lag1 --context-lengths 48k,96k --batch $batch \
    --out $OUT/before_b$batch 2>&1 | grep -v "^placement=\|UserWarning\|_warn_once"
done
for f in $OUT/after_b*/offload_decode_profile.md; do
  echo "== $f"; grep -A 12 "^## offload" $f | grep "^## \|copy_rows\|sorted_with\|plan_resident" | cut -c1-150
done
cd $OUT && tar cf results.tar after_b1 after_b4 before_b1 before_b4 && rm -r after_b1 after_b4 before_b1 before_b4; ls -la $OUT
