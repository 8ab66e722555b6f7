#!/bin/bash
# generate() at 96k for a full-size GLM-4.7-Flash (random weights, bf16, 32 new tokens), not yet run: AsyncTLS
# offloaded by tokens (exact, the default offload) at batch 8 (the plan counts the prefill's K/V
# expanded from the latent: 28 GiB at batch 8), resident at batch 8, stock transformers at batch 4; rows printed as
# they finish. Then the graphed decode step offloaded by tokens (exact and lag 1) at 96k, batch 1 and 8. Results
# under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/e2e_96k_glm_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 400 python -m asynctls_hf bench generate --model glm-4.7-flash --context-lengths 96k --new-tokens 32 \
  --runs offload-token:8,asynctls:8,stock:4 --out "$OUT/glm" 2>&1 | grep -v Warning | grep "method=\|rror" \
  | tee -a "$OUT/log.txt"
timeout 150 python -m asynctls_hf bench decode-step --model glm-4.7-flash --context-lengths 96k --batches 1,8 \
  --methods graphed-offload-token,graphed-offload-token-lag1 --steps 20 --warmup 4 --out "$OUT/glm_step" 2>&1 \
  | grep -v Warning | grep "method=\|rror" | tee -a "$OUT/log.txt"
