#!/bin/bash
# Final H200 run for the CUDA-graph issue (the decode token's write and block-summary update fused): the graph, offload
# and kernel GPU tests, then the Qwen3-8B decode step graphed and graphed with offload at 1k-96k, batch 1-8, and
# stock transformers' static cache with its automatic compile at 96k, batch 1.
# Usage (repo root): OUT=dir bash benchmarks/scripts/graphs_h200_final.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 130 python -m pytest -q -m gpu tests/test_graphs.py tests/cache/test_offloaded_gpu.py -p no:cacheprovider \
  > "$OUT/gpu_tests.log" 2>&1
timeout 30 python -m pytest -q tests/ops/test_block_summaries.py -p no:cacheprovider >> "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 140 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 1k,48k,96k --batches 1,4,8 \
  --methods graphed --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 | grep -v Warning | tail -12
timeout 130 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 1k,48k,96k --batches 1,4,8 \
  --methods graphed-offload --steps 12 --warmup 3 --out "$OUT/qwen_offload" 2>&1 | grep -v Warning | tail -12
timeout 150 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches 1 \
  --methods stock-compiled --steps 12 --warmup 4 --out "$OUT/qwen_compiled" 2>&1 | grep -v Warning | tail -4
