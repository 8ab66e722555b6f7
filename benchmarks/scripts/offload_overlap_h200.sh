#!/bin/bash
# Do the offloaded copies overlap the compute beside them? The graphed offloaded Qwen3-8B step measured the resident
# step plus its copies (70.0 = 11.8 + 58.2 ms at 96k, batch 4), not max(compute, copies). The attention-only
# benchmark with the Qwen3-8B layer's GEMMs around each layer (--dense-layer) and drifting queries (hit rate ~0.85,
# the probes' locality), resident against lag 1, with the copy stream at default and high priority and the copy
# kernel's grid uncapped and capped at the SM count (132 on the H200); lag 0 and the token granularity (exact, the
# selected tokens fetched) once.
# Each run time-boxed, rows printed as they finish; results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/offload_overlap_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
run() {  # name, timeout, extra arguments...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python -m asynctls_hf bench offload-decode --attention gqa --batch 4 --context-lengths 96k \
    --steps 32 --warmup 4 --drift 0.3 --dense-layer --out "$OUT/$name" "$@" 2>&1 | grep -v Warning \
    | grep "placement=\|rror" | sed "s/^/$name /" | tee -a "$OUT/log.txt"
}
run default 200 --placements resident,lag0,lag1,tokens
run high_priority 80 --placements lag1 --copy-stream-priority -1
run capped_132 80 --placements lag1 --copy-programs 132
run high_priority_capped_132 80 --placements lag1 --copy-stream-priority -1 --copy-programs 132
run high_priority_capped_32 80 --placements lag1 --copy-stream-priority -1 --copy-programs 32
