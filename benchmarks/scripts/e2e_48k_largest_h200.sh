#!/bin/bash
# generate() at 48k on the Qwen3-8B config (random weights, bf16, 32 new tokens), each method at the largest batch
# it may hold, not yet run: stock at 8 and 12 (a batch that does not fit is reported as such), AsyncTLS resident at
# 12, offloaded by tokens (exact, the default offload) at 14 (about 7.2 GB of pinned K/V per row: 101 GB, within the 90% of
# the host's 125 GiB the memory check allows). Rows are printed as they finish. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/e2e_48k_largest_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 560 python -m asynctls_hf bench generate --model qwen3-8b --context-lengths 48k --new-tokens 32 \
  --runs stock:8,stock:12,asynctls:12,offload-token:14 --out "$OUT/qwen48k" 2>&1 | grep -v Warning \
  | grep "method=\|rror" | tee -a "$OUT/log.txt"
