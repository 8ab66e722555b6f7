#!/bin/bash
# The timelines of the Qwen3-8B graphed step at 96k batch 1 (queries smoothed, --query-smoothing 0.05): resident,
# offloaded by tokens exact and lag 1, every kernel, copy and fill of 4 profiled steps (profile-step --timeline),
# alternated and each profiled twice. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/step_timeline_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for round in 1 2; do
  for method in graphed graphed-offload-token graphed-offload-token-lag1; do
    timeout 100 python -m asynctls_hf bench profile-step --model qwen3-8b --context 98304 --batch 1 \
      --method $method --query-smoothing 0.05 --steps 4 --top 60 --timeline "$OUT/timeline_${method}_$round.csv" \
      2>&1 | grep -v Warning > "$OUT/profile_${method}_$round.txt"
    tail -1 "$OUT/profile_${method}_$round.txt"
  done
done
cd "$OUT" && tar czf timelines.tar.gz timeline_* && rm timeline_*
