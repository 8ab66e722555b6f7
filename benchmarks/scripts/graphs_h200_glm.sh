#!/bin/bash
# Second H200 run for the CUDA-graph issue: every GPU test (graphed offload included), then the decode-step
# benchmark of a full-size GLM-4.7-Flash: stock eager against AsyncTLS eager, graphed and graphed with offload.
# Usage (repo root): OUT=dir bash benchmarks/scripts/graphs_h200_glm.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 200 python -m pytest -q -m gpu tests -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 330 python -m asynctls_hf bench decode-step --model glm-4.7-flash --context-lengths 1k,48k,96k \
  --batches 1,4,8 --methods stock,eager,graphed,graphed-offload --steps 12 --warmup 3 --out "$OUT/glm" 2>&1 \
  | grep -v Warning | tail -40
