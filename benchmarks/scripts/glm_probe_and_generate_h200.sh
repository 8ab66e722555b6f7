#!/bin/bash
# The GLM probe's accuracy grid and locality (probe-models issue), then end-to-end generate() (offload issue).
# Usage (repo root): OUT=dir bash benchmarks/scripts/glm_probe_and_generate_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
GLM=asynctls_hf/probes/checkpoints/glm4_moe_lite
timeout 280 python -m asynctls_hf.eval --model $GLM --no-progress \
  --tasks niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery \
  --context-lengths 16384,32768 --budgets 512,1024,2048 --samples 6 --fidelity-steps 8 --out evalglm \
  > "$OUT/eval_glm.log" 2>&1
tail -5 "$OUT/eval_glm.log"
timeout 60 python -m asynctls_hf locality --model $GLM --task niah_single_2 --context-lengths 16384,32768 \
  --samples 4 --steps 32 --budget 1024 --out evalglm/glm4_moe_lite 2>&1 | tail -12
tar cf "$OUT/evalglm.tar" evalglm
timeout 200 python -m asynctls_hf bench generate --context-lengths 48k \
  --runs stock:4,asynctls:4,offload:4,asynctls:8 --new-tokens 16 --out "$OUT/generate" 2>&1 | tail -8
