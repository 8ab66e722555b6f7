#!/bin/bash
# generate() at 96k on the Qwen3-8B config (random weights, bf16), 32 new tokens: offloaded by tokens with
# prefetch_lag=1 at batch 8 (its plan on the copy stream; the chunked prefill with the per-row flash attention and
# the prompt held on the GPU where it fits), then the resident cache at batch 8 (2026-11-29: out of memory in the
# prefill while the flash check was wrong and the masked attention ran). Stock at batch 4 (its largest) was measured
# on 2026-11-29 (benchmarks/2026-11-29_e2e_96k_chunked_h200/). Results under $OUT.
# Usage (repo root): OUT=dir LIMIT=seconds bash benchmarks/scripts/e2e_96k_lag1_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout "${LIMIT:-560}" python -m asynctls_hf bench generate --model qwen3-8b --context-lengths 96k --new-tokens 32 \
  --runs offload-token-lag1:8,asynctls:8 --out "$OUT/qwen" 2>&1 | grep -v Warning | grep "method=\|rror" \
  | tee "$OUT/log.txt"
