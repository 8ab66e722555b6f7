#!/bin/bash
# The shipped GLM probe, asynctls at budget 512, 16k, float32, on the development CPU (2 cores), one process per
# setting: the default labels (32 channels of the probe's 192, 4 bits), 8-bit labels, and 48, 64 and 96 channels
# (20 samples of niah_single_1); 96 channels on 40 samples of niah_single_1 and niah_single_3, 64 on 40 of
# niah_single_2 and niah_single_3.
set -u
run() {  # out samples task [extra...]
  local out=$1 samples=$2 task=$3; shift 3
  OMP_NUM_THREADS=1 python -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite \
    --methods asynctls --budgets 512 --tasks $task --context-lengths 16384 --samples $samples --dtype float32 \
    --device cpu --no-progress --out $out "$@"
}
run 20-samples_default 20 niah_single_1 &
run 20-samples_bits8 20 niah_single_1 --label-bits 8 &
run 20-samples_ch96 20 niah_single_1 --label-channels 96 &
wait
run 40-samples_ch96_niah_single_1 40 niah_single_1 --label-channels 96 &
run 40-samples_ch96_niah_single_3 40 niah_single_3 --label-channels 96 &
wait
run 20-samples_ch48 20 niah_single_1 --label-channels 48 &
run 20-samples_ch64 20 niah_single_1 --label-channels 64 &
wait
run 40-samples_ch64_niah_single_2 40 niah_single_2 --label-channels 64 &
run 40-samples_ch64_niah_single_3 40 niah_single_3 --label-channels 64 &
wait
