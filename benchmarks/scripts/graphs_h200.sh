#!/bin/bash
# One H200 run for the CUDA-graph issue: every GPU test (the new graph tests, the offload ones not yet run on a GPU),
# then the decode-step benchmark of a full-size Qwen3-8B: stock eager against AsyncTLS eager and graphed, at 1k, 48k
# and 96k, batch 1, 4 and 8. Each step time-boxed, results under $OUT as they finish.
# Usage (repo root): OUT=dir bash benchmarks/scripts/graphs_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
timeout 240 python -m pytest -q -m gpu tests -x -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
tail -15 "$OUT/gpu_tests.log"
timeout 300 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 1k,48k,96k --batches 1,4,8 \
  --methods stock,eager,graphed --steps 24 --warmup 4 --out "$OUT/qwen" 2>&1 | grep -v Warning | tail -30
