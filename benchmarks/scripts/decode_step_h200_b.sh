#!/bin/bash
# Second H200 run for the CUDA-graph issue's table: stock static+compile for Qwen3-8B at 1k and 48k (batch 1, 4, 8),
# the Qwen3-8B graphed offloaded step at 96k batch 8 (the largest batch host memory may allow), GLM-4.7-Flash
# AsyncTLS graphed at 1k, 48k and 96k (batch 1, 4, 8).
# Each piece time-boxed; results under $OUT. Usage (repo root): OUT=dir bash benchmarks/scripts/decode_step_h200_b.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
bench() {  # name, timeout, bench arguments...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python -m asynctls_hf bench decode-step --steps 20 --warmup 4 --out "$OUT/$name" "$@" 2>&1 \
    | grep -v Warning | grep "method=\|Error" | tee -a "$OUT/log.txt"
}
bench glm 150 --model glm-4.7-flash --context-lengths 96k,48k,1k --batches 1,4,8 --methods graphed
bench qwen_offload_96k_b8 60 --model qwen3-8b --context-lengths 96k --batches 8 --methods graphed-offload
bench qwen_compiled 280 --model qwen3-8b --context-lengths 1k,48k --batches 1,4,8 --methods stock-compiled
