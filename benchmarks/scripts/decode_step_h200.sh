#!/bin/bash
# One H200 run for the CUDA-graph issue's table (Qwen3-8B): stock eager, AsyncTLS eager and graphed at 1k, 48k and
# 96k, batch 1, 4 and 8, then stock static+compile (transformers' compiled call over a StaticCache) at 96k, batch
# 1, 4 and 8. Each piece time-boxed; results under $OUT. Usage (repo root): OUT=dir bash benchmarks/scripts/decode_step_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
timeout 250 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k,48k,1k --batches 1,4,8 \
  --methods stock,eager,graphed --steps 20 --warmup 4 --out "$OUT/qwen" 2>&1 | grep -v Warning | grep "method=" \
  | tee "$OUT/qwen_log.txt"
for batch in 1 4 8; do
  timeout 100 python -m asynctls_hf bench decode-step --model qwen3-8b --context-lengths 96k --batches $batch \
    --methods stock-compiled --steps 20 --warmup 4 --out "$OUT/qwen_compiled_96k_b$batch" 2>&1 | grep -v Warning \
    | grep "method=\|Error" | tail -3 | tee -a "$OUT/qwen_compiled_log.txt"
done
