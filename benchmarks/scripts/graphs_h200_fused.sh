#!/bin/bash
# Fourth H200 run for the CUDA-graph issue: with the decode token's write and block-summary update fused into one
# kernel, the graph tests and the kernel's test on the GPU, then the Qwen3-8B graphed decode step again.
# Usage (repo root): OUT=dir bash benchmarks/scripts/graphs_h200_fused.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 120 python -m pytest -q tests/ops/test_block_summaries.py tests/test_graphs.py -p no:cacheprovider \
  > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 200 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 1k,48k,96k --batches 1,4,8 \
  --methods graphed --steps 24 --warmup 4 --out "$OUT/qwen" 2>&1 | grep -v Warning | tail -12
timeout 150 python -m asynctls_hf bench generate --model qwen3-8b --context-lengths 48k \
  --runs stock:4,asynctls:4,offload:4 --new-tokens 32 --out "$OUT/generate" 2>&1 | grep -v Warning | tail -6
