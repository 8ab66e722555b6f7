#!/bin/bash
# The CUDA-graph issue's last two cells: stock static+compile for GLM-4.7-Flash at 48k batch 8 (about two minutes of
# compilation, then the 48k fill and the steps) and the Qwen3-8B graphed offloaded step at 96k at the largest batch
# this host's pinned memory allows: batch 8 needs about 109 GiB (twice the 54.3 GiB a batch-4 cache of 36 such
# layers asked for) of the 125 GiB host; if the memory check refuses it, batch 7. Results under $OUT.
# Usage (repo root): OUT=dir bash benchmarks/scripts/close_graphs_h200.sh
set -u
source benchmarks/scripts/decode_step_bench.sh
bench glm_compiled_48k_b8 270 --model glm-4.7-flash --context-lengths 48k --batches 8 --methods stock-compiled
bench qwen_offload_96k_b8 200 --model qwen3-8b --context-lengths 96k --batches 8 --methods graphed,graphed-offload
if ! grep -q "method=graphed-offload batch=8 .*status=ok" "$OUT/log.txt"; then
  bench qwen_offload_96k_b7 150 --model qwen3-8b --context-lengths 96k --batches 7 --methods graphed-offload
fi
