#!/bin/bash
# End-to-end generate() at 96k for a full-size Qwen3-8B (random weights, bf16, 32 new tokens): stock transformers at
# batch 4, AsyncTLS resident (graphed) at batch 8, AsyncTLS offloaded by tokens (exact, graphed) at batch 8, in one
# run; rows printed as they finish (the time box may end the last). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/e2e_96k_qwen_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 450 python -m asynctls_hf bench generate --model qwen3-8b --context-lengths 96k --new-tokens 32 \
  --runs stock:4,asynctls:8,offload-token:8 --out "$OUT/qwen" > "$OUT/qwen.log" 2>&1
echo "exit $?" >> "$OUT/qwen.log"
grep -v Warning "$OUT/qwen.log" | grep "method=\|rror\|exit" | tail -8
