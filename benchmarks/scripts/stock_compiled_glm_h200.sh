#!/bin/bash
# The CUDA-graph issue's table, the cells not yet measured, in two device calls of at most 10 minutes:
#   part a: the two ops test files changed after the fused-offload run, then stock static+compile for GLM-4.7-Flash
#           at 1k and 48k (batch 1, 4, 8; rows print as they finish, the time box may end the list);
#   part b: the GLM cells part a did not reach (SHAPES="context:batch ..."), GLM 96k batch 8, and the Qwen3-8B
#           graphed offloaded step at 96k batch 8 (about 109 GiB pinned store).
# Results under $OUT. Usage (repo root): OUT=dir bash benchmarks/scripts/stock_compiled_glm_h200.sh a|b
set -u
source benchmarks/scripts/decode_step_bench.sh
if [ "$1" = a ]; then
  timeout 60 python -m pytest -q tests/ops/test_copy_rows.py tests/ops/test_triton_model.py -p no:cacheprovider 2>&1 \
    | tail -3 | tee "$OUT/ops_tests.log"
  bench glm_compiled 500 --model glm-4.7-flash --context-lengths 1k,48k --batches 1,4,8 --methods stock-compiled
else
  for shape in ${SHAPES:-} 96k:8; do
    bench "glm_compiled_${shape/:/_b}" 160 --model glm-4.7-flash --context-lengths "${shape%:*}" \
      --batches "${shape#*:}" --methods stock-compiled
  done
  bench qwen_offload_96k_b8 200 --model qwen3-8b --context-lengths 96k --batches 8 --methods graphed-offload
fi
