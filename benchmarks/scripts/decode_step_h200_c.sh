#!/bin/bash
# Third H200 run for the CUDA-graph issue's table: stock static+compile for GLM-4.7-Flash at 96k (batch 1, 4, 8),
# and for Qwen3-8B at 48k batch 8 (cut off in the second run). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/decode_step_h200_c.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
bench() {  # name, timeout, bench arguments...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python -m asynctls_hf bench decode-step --steps 20 --warmup 4 --out "$OUT/$name" "$@" 2>&1 \
    | grep -v Warning | grep "method=\|Error" | tee -a "$OUT/log.txt"
}
bench glm_compiled 330 --model glm-4.7-flash --context-lengths 96k --batches 1,4,8 --methods stock-compiled
bench qwen_compiled_48k_b8 100 --model qwen3-8b --context-lengths 48k --batches 8 --methods stock-compiled
