#!/bin/bash
# generate() at 96k for a full-size GLM-4.7-Flash (random weights, bf16, 32 new tokens), not yet run: AsyncTLS
# offloaded by tokens at batch 8 (the plan counts the prefill's K/V expanded from the latent: 28 GiB at batch 8),
# resident at batch 4, stock transformers at batch 4; rows printed as they finish. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/e2e_96k_glm_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 560 python -m asynctls_hf bench generate --model glm-4.7-flash --context-lengths 96k --new-tokens 32 \
  --runs offload-token:8,asynctls:4,stock:4 --out "$OUT/glm" 2>&1 | grep -v Warning | grep "method=\|rror" \
  | tee -a "$OUT/log.txt"
