#!/bin/bash
# (1) graph_host_access_h200.py: whether kernels reading or writing pinned host memory slow the rest of a graph.
# (2) What wider token labels cost GLM-4.7-Flash's graphed decode step (96k, batch 1 and 4, random weights, bf16):
# label_channels 128 (the default, a quarter of 576, rounded down to a power of two), 256 and 192, 128 again last.
# Results under $OUT. Usage (repo root): OUT=dir bash benchmarks/scripts/host_access_glm_labels_h200.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 100 python benchmarks/scripts/graph_host_access_h200.py --out "$OUT" 2>&1 | grep -v Warning
for channels in 128 256 192 128; do
  timeout 110 python -m asynctls_hf bench decode-step --model glm-4.7-flash --context-lengths 96k --batches 1,4 \
    --methods graphed --label-channels $channels --steps 20 --warmup 4 --out "$OUT/glm_labels_$channels" 2>&1 \
    | grep -v Warning | grep "method=\|rror" | sed "s/^/labels=$channels /" | tee -a "$OUT/glm_labels_log.txt"
done
(cd "$OUT" && tar czf glm_labels.tar.gz glm_labels_1* glm_labels_2* && rm -rf glm_labels_1* glm_labels_2*)
