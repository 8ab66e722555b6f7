#!/bin/bash
# Do lag 1's copies run beside the compute in the captured step, and does the copy kernel's grid decide it? Qwen3-8B
# graphed decode step at 96k, queries smoothed (--query-smoothing 0.05), one process per line: resident at batch 1
# and 4 (this machine start's reference), lag 1 at batch 4 with the copy launches uncapped, capped at 132 (the SM
# count), 32 and 16 programs, and without successor prefetch; then torch.profiler timelines of resident, exact and
# lag 1 at batch 4 (`bench profile-step`: per-stream busy time, and the copy stream's time beside the compute).
# Back: $OUT/steps.txt, $OUT/profiles.txt and $OUT/runs.tar.gz (each run's decode_step.json/.md and the timelines).
# Usage (repo root): OUT=dir bash benchmarks/scripts/lag1_overlap_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p /tmp/runs
step() {  # method batches name [extra bench options]
  echo "[$SECONDS s] $*" | tee -a "$OUT/steps.txt"
  timeout 120 python -m asynctls_hf bench decode-step --model qwen3-8b --methods $1 --context-lengths 96k \
    --batches $2 --query-smoothing 0.05 --steps 24 --out "/tmp/runs/$3" "${@:4}" 2>&1 | grep -v Warning \
    | grep "method=\|rror" | tee -a "$OUT/steps.txt"
}
profile() {  # method name
  echo "[$SECONDS s] profile $*" | tee -a "$OUT/profiles.txt"
  timeout 150 python -m asynctls_hf bench profile-step --model qwen3-8b --context 98304 --batch 4 --method $1 \
    --query-smoothing 0.05 --steps 5 --top 25 --timeline "/tmp/runs/timeline_$2.csv" 2>&1 | grep -v Warning \
    | tee -a "$OUT/profiles.txt"
}
step graphed 1,4 resident
step graphed-offload-token-lag1 4 lag1_uncapped
step graphed-offload-token-lag1 4 lag1_copy_programs_132 --copy-programs 132
step graphed-offload-token-lag1 4 lag1_copy_programs_32 --copy-programs 32
step graphed-offload-token-lag1 4 lag1_copy_programs_16 --copy-programs 16
step graphed-offload-token-lag1 4 lag1_no_successors --prefetch-successors 0
profile graphed-offload-token-lag1 lag1_b4
profile graphed-offload-token exact_b4
profile graphed resident_b4
echo "[$SECONDS s] done" | tee -a "$OUT/steps.txt"
cd /tmp/runs && tar czf "$OUT/runs.tar.gz" .
