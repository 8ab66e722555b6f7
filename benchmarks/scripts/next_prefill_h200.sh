#!/bin/bash
# Next H200 run (written 2026-11-29, not yet run): every GPU test (the chunked prefill's GPU test and the
# page-locked store's are new), the prefill attention check (masked SDPA against per-row lower-right causal SDPA at
# the Qwen3-8B and GLM latent shapes, 96k, batch 8), then generate() at 96k: Qwen3-8B resident at batch 8 (the plan
# now counts the prefill's working memory and generate's prefill returns one hidden state per row: refused before
# the prefill, or run) and at batch 4 (stock's largest there: 33.6 tokens/s steady, 2026-11-29), and offloaded by
# tokens at batch 8 (prefill 253.2 s on 2026-11-29, before the per-row flash attention and the held prompt). GLM-4.7-Flash at 96k end to end needs its own call. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/next_prefill_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 170 python -m pytest -q -m gpu tests -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
grep -E "passed|failed|^FAILED|^ERROR" "$OUT/gpu_tests.log" | tail -20
timeout 90 python benchmarks/scripts/prefill_attention_check.py 2>&1 | grep -v Warning | tee "$OUT/prefill_attention.txt"
timeout 330 python -m asynctls_hf bench generate --model qwen3-8b --context-lengths 96k --new-tokens 32 \
  --runs asynctls:8,asynctls:4,offload-token:8 --out "$OUT/qwen" 2>&1 | grep -v Warning | grep "method=\|rror" | tee -a "$OUT/log.txt"
