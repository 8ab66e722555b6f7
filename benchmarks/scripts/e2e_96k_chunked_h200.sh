#!/bin/bash
# End-to-end generate() at 96k for a full-size Qwen3-8B (random weights, bf16, 32 new tokens) after prefill runs the
# whole model in chunks of prefill_chunk_size tokens (before it, AsyncTLS at batch 8 ran out of GPU memory in the
# prefill: one MLP intermediate over 8 x 96k tokens is 18 GiB). AsyncTLS offloaded by tokens at batch 8, resident
# at batch 8, and stock transformers at batch 4 (its largest at 96k), in one run; rows printed as they finish.
# First the GPU tests of generation (chunked prefill on CUDA). Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/e2e_96k_chunked_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 60 python -m pytest -q -m gpu tests/test_prefill.py tests/test_graphs.py tests/patches -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -5
timeout 400 python -m asynctls_hf bench generate --model qwen3-8b --context-lengths 96k --new-tokens 32 \
  --runs offload-token:8,asynctls:8,stock:4 --out "$OUT/qwen" > "$OUT/qwen.log" 2>&1
echo "exit $?" >> "$OUT/qwen.log"
grep -v Warning "$OUT/qwen.log" | grep "method=\|rror\|exit" | tail -8
