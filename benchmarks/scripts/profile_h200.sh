#!/bin/bash
# One H200 run: every GPU test (the dense-equivalence ones not re-run since the fused append kernel), then where a
# graphed decode step of a full-size Qwen3-8B spends its GPU time at 96k, batch 1 and 8, and GLM-4.7-Flash at 96k,
# batch 1. Results under $OUT. Usage (repo root): OUT=dir bash benchmarks/scripts/profile_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)"
timeout 200 python -m pytest -q -m gpu tests -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
tail -8 "$OUT/gpu_tests.log"
for batch in 1 8; do
  timeout 100 python -m asynctls_hf bench profile-step --model qwen3-8b --context 98304 --batch $batch --top 45 \
    2>&1 | grep -v Warning | tee "$OUT/qwen_96k_b${batch}_graphed.txt" | tail -60
done
timeout 100 python -m asynctls_hf bench profile-step --model glm-4.7-flash --context 98304 --batch 1 --top 45 \
  2>&1 | grep -v Warning | tee "$OUT/glm_96k_b1_graphed.txt" | tail -60
