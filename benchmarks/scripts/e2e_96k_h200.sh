#!/bin/bash
# The offload issue's end-to-end measurement at 96k: generate() of a full-size Qwen3-8B (random weights, bf16),
# stock transformers at the largest batch that fits, AsyncTLS resident (CUDA-graph decode) and offloaded at batch 8,
# then the same for GLM-4.7-Flash. Rows are printed as they finish (a time box may end a run); results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/e2e_96k_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
run() {  # name, timeout, bench arguments...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python -m asynctls_hf bench generate --context-lengths 96k --new-tokens 32 --out "$OUT/$name" "$@" \
    2>&1 | grep -v Warning | grep "method=\|Error" | tee -a "$OUT/log.txt"
}
run qwen 560 --model qwen3-8b --runs stock:8,stock:4,asynctls:8,offload:8
run glm 560 --model glm-4.7-flash --runs stock:8,stock:4,asynctls:8,offload:8
