#!/bin/bash
# Lag 1's copy launches capped: confirm and pick the cap. Graphed decode step, queries smoothed (--query-smoothing
# 0.05), one process per line, resident runs first, between and last: Qwen3-8B at 96k batch 1 and 4 with the copy
# launches capped at 24, 32 and 48 programs and uncapped, 32 twice; lag 1 capped at 32 at 48k and 64k; GLM-4.7-Flash
# at 96k resident, exact and lag 1 capped at 32. Back: $OUT/steps.txt and $OUT/runs.tar.gz.
# Usage (repo root): OUT=dir bash benchmarks/scripts/lag1_copy_cap_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p /tmp/runs
step() {  # model method lengths batches name [extra bench options]
  echo "[$SECONDS s] $*" | tee -a "$OUT/steps.txt"
  timeout 100 python -m asynctls_hf bench decode-step --model $1 --methods $2 --context-lengths $3 --batches $4 \
    --query-smoothing 0.05 --steps 24 --out "/tmp/runs/$5" "${@:6}" 2>&1 | grep -v Warning \
    | grep "method=\|rror" | tee -a "$OUT/steps.txt"
}
lag1=graphed-offload-token-lag1
step qwen3-8b graphed 96k 1,4 resident
step qwen3-8b $lag1 96k 1,4 lag1_cap32 --copy-programs 32
step qwen3-8b $lag1 96k 4 lag1_cap48 --copy-programs 48
step qwen3-8b $lag1 96k 4 lag1_cap24 --copy-programs 24
step qwen3-8b graphed 96k 1,4 resident_again
step qwen3-8b $lag1 96k 1,4 lag1_uncapped
step qwen3-8b $lag1 96k 1,4 lag1_cap32_again --copy-programs 32
step qwen3-8b $lag1 48k,64k 1,4 lag1_cap32_48k_64k --copy-programs 32
step glm-4.7-flash graphed 96k 1,4 glm_resident
step glm-4.7-flash graphed-offload-token 96k 1,4 glm_exact
step glm-4.7-flash $lag1 96k 1,4 glm_lag1_cap32 --copy-programs 32
echo "[$SECONDS s] done" | tee -a "$OUT/steps.txt"
cd /tmp/runs && tar czf "$OUT/runs.tar.gz" .
