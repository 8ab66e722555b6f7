#!/bin/bash
# Last H200 run of the session: generate() end to end at 48k with CUDA-graph decode (stock, AsyncTLS resident and
# offloaded, batch 4), the Qwen3-8B offloaded graphed step at 96k batch 4, GLM-4.7-Flash stock static+compile at 96k.
# Usage (repo root): OUT=dir bash benchmarks/scripts/graphs_h200_e2e.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 170 python -m asynctls_hf bench generate --model qwen3-8b --context-lengths 48k \
  --runs stock:4,asynctls:4,offload:4 --new-tokens 32 --out "$OUT/generate" 2>&1 | grep -v Warning | tail -6
timeout 80 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 4 \
  --methods graphed-offload --steps 10 --warmup 3 --out "$OUT/qwen_offload" 2>&1 | grep -v Warning | tail -3
timeout 150 python -m asynctls_hf bench decode-step --model glm-4.7-flash --context-lengths 96k --batches 1 \
  --methods stock-compiled --steps 10 --warmup 4 --out "$OUT/glm_compiled" 2>&1 | grep -v Warning | tail -3
