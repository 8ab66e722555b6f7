#!/bin/bash
# Not run yet (for the next device session): the offload rows not re-measured since exact mode lost its side stream
# and graphed lag 1 its eager copy stream use (2026-12-03). The graphed decode step, queries smoothed
# (--query-smoothing 0.05), batch 1 and 4, one process per line: Qwen3-8B lag 1 at 48k and 64k, and lag 1 at 96k
# without successor prefetch (at batch 4 lag 1 copied 111 MB a step, exact 66); GLM-4.7-Flash at 96k resident,
# exact, resident again, lag 1. Back: $OUT/steps.txt and $OUT/rows.tar (each run's decode_step.json and .md; few files
# come back from a device call).
# Usage (repo root): OUT=dir bash benchmarks/scripts/offload_rows_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
step() {  # model method lengths name [extra bench options]
  echo "[$SECONDS s] $*" | tee -a "$OUT/steps.txt"
  timeout 150 python -m asynctls_hf bench decode-step --model $1 --methods $2 --context-lengths $3 --batches 1,4 \
    --query-smoothing 0.05 --steps 24 --out "/tmp/rows/$4" "${@:5}" 2>&1 | grep -v Warning | grep "method=\|rror" \
    | tee -a "$OUT/steps.txt"
}
step qwen3-8b graphed-offload-token-lag1 48k,64k qwen_lag1_48k_64k
step qwen3-8b graphed-offload-token-lag1 96k qwen_lag1_96k_no_successors --prefetch-successors 0
step glm-4.7-flash graphed 96k glm_graphed_96k
step glm-4.7-flash graphed-offload-token 96k glm_exact_96k
step glm-4.7-flash graphed 96k glm_graphed_96k_again
step glm-4.7-flash graphed-offload-token-lag1 96k glm_lag1_96k
echo "[$SECONDS s] done" | tee -a "$OUT/steps.txt"
cd /tmp/rows && tar cf "$OUT/rows.tar" .
