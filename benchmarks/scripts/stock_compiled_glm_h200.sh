#!/bin/bash
# The CUDA-graph issue's table, the cells not yet measured: stock static+compile for GLM-4.7-Flash at 1k and 48k
# (batch 1, 4, 8) and 96k batch 8, and the Qwen3-8B graphed offloaded step at 96k batch 8 (113 GB pinned store).
# Results under $OUT. Usage (repo root): OUT=dir bash benchmarks/scripts/stock_compiled_glm_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
bench() {  # name, timeout, bench arguments...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python -m asynctls_hf bench decode-step --steps 20 --warmup 4 --out "$OUT/$name" "$@" 2>&1 \
    | grep -v Warning | grep "method=\|Error" | tee -a "$OUT/log.txt"
}
bench glm_compiled_96k_b8 150 --model glm-4.7-flash --context-lengths 96k --batches 8 --methods stock-compiled
bench glm_compiled 420 --model glm-4.7-flash --context-lengths 1k,48k --batches 1,4,8 --methods stock-compiled
bench qwen_offload_96k_b8 240 --model qwen3-8b --context-lengths 96k --batches 8 --methods graphed-offload
