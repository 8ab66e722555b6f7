#!/bin/bash
# The CUDA-graph issue's last two cells: stock static+compile for GLM-4.7-Flash at 48k batch 8 (about two minutes of
# compilation, then the 48k fill and the steps) and the Qwen3-8B graphed offloaded step at 96k batch 8, the largest
# batch this host's pinned memory allows (about 105 GiB of its 125 GiB). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/close_graphs_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
bench() {  # name, timeout, bench arguments...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python -m asynctls_hf bench decode-step --steps 20 --warmup 4 --out "$OUT/$name" "$@" 2>&1 \
    | grep -v Warning | grep "method=\|rror" | tee -a "$OUT/log.txt"
}
bench glm_compiled_48k_b8 270 --model glm-4.7-flash --context-lengths 48k --batches 8 --methods stock-compiled
bench qwen_offload_96k_b8 270 --model qwen3-8b --context-lengths 96k --batches 8 --methods graphed,graphed-offload
