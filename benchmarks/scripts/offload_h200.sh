#!/bin/bash
# One H200 run for the offload and probe-models issues: GPU tests of the offload path, the transfer and decode-step
# benchmarks, the GLM probe's accuracy grid and locality, then end-to-end generate(); each step time-boxed, results
# written under $OUT as they finish.
# Usage (repo root): OUT=dir bash benchmarks/scripts/offload_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout 120 python -m pytest -q -m gpu tests/cache/test_offloaded_gpu.py tests/offload tests/ops/test_copy_rows.py \
  > "$OUT/gpu_tests.log" 2>&1; tail -6 "$OUT/gpu_tests.log"
timeout 60 python -m asynctls_hf bench offload-transfer --batches 1,4 --misses 8,32,64 --reps 10 \
  --out "$OUT/transfer" 2>&1 | tail -13
timeout 100 python -m asynctls_hf bench offload-decode --attention gqa --batch 2 --drift 0.3 --steps 32 \
  --out "$OUT/decode" 2>&1 | tail -11
GLM=asynctls_hf/probes/checkpoints/glm4_moe_lite
timeout 170 python -m asynctls_hf.eval --model $GLM --no-progress \
  --tasks niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery \
  --context-lengths 16384,32768 --budgets 512,1024,2048 --samples 5 --fidelity-steps 8 --out evalglm \
  > "$OUT/eval_glm.log" 2>&1
tail -3 "$OUT/eval_glm.log"
timeout 40 python -m asynctls_hf locality --model $GLM --task niah_single_2 --context-lengths 16384,32768 \
  --samples 4 --steps 32 --budget 1024 --out evalglm/glm4_moe_lite 2>&1 | tail -8
tar cf "$OUT/evalglm.tar" evalglm
timeout 150 python -m asynctls_hf bench generate --context-lengths 48k --runs stock:4,asynctls:4,offload:4 \
  --new-tokens 16 --out "$OUT/generate" 2>&1 | tail -6
