#!/bin/bash
# The resident-set plan as one Triton launch: its reference test and the offloaded-cache GPU tests, then the graphed
# offloaded Qwen3-8B step at 1k and 48k, batch 1 (before: 20.3 / 33.0 ms, resident 10.6 / 11.0 ms).
# Usage (repo root): OUT=dir bash benchmarks/scripts/resident_plan_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 100 python -m pytest -q tests/ops/test_resident.py tests/cache/test_offloaded_gpu.py tests/test_graphs.py \
  -p no:cacheprovider 2>&1 | tail -4 | tee "$OUT/tests.log"
timeout 120 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 1k,48k --batches 1 \
  --methods graphed-offload --steps 20 --warmup 4 --out "$OUT/qwen_offload" 2>&1 | grep -v Warning | grep "method=" \
  | tee "$OUT/log.txt"
