#!/bin/bash
# All GPU tests, then generate() at 96k for a full-size GLM-4.7-Flash (random weights, bf16, 32 new tokens): AsyncTLS
# offloaded by tokens (exact, the default offload) at batch 8 (the plan counts the prefill's K/V expanded from the
# latent: 28 GiB at batch 8), stock transformers at batch 4, resident at batch 8; rows printed as they finish.
# Results under $OUT. The graphed decode step offloaded by tokens is `glm_token_step_h200.sh`.
# Usage (repo root): OUT=dir bash benchmarks/scripts/e2e_96k_glm_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 140 python -m pytest -q -m gpu tests -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 440 python -m asynctls_hf bench generate --model glm-4.7-flash --context-lengths 96k --new-tokens 32 \
  --runs offload-token:8,stock:4,asynctls:8 --out "$OUT/glm" 2>&1 | grep -v Warning | grep "method=\|rror" \
  | tee -a "$OUT/log.txt"
