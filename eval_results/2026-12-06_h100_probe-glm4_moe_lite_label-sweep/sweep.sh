#!/bin/bash
# What the GLM probe's token selection loses at budget 1024, and what gets it back: token selection ranking by
# estimated head mass (--token-scoring head_mass) and wider labels, on the six needle tasks, 20 samples, float32,
# seed 0 (the samples of ../2026-12-06_h100_probe-glm4_moe_lite_grid/), Triton kernels. One process per run, all at
# once, within $1 seconds; a finished key is on disk, so the same call again on the warm machine runs only what is
# missing. Back: $OUT/sweep.tar.
# The H100 calls of 2026-12-06 (torch 2.11, transformers 5.17, commit ae8a255: head mass's reduction in PyTorch ops,
# the same function as now): `sweep.sh 470` (the 16k runs finished; the 32k ones were cut at 470 s) and on the warm
# machine `sweep.sh 285` (every 32k run finished but labels-96, which has four of six tasks). Output: h100/;
# sweep_call1.log, sweep_call2.log; gpu_tests.log (the GPU tests of test_pinned.py and test_labels.py, run first).
# cpu_head-mass_16k/: three of the 16k cells at budget 1024 on the development CPU the same day (the PyTorch reference
# path, patched to rank by head mass before the option existed), which gave the H100's scores.
# Usage (repo root): OUT=dir bash eval_results/2026-12-06_h100_probe-glm4_moe_lite_label-sweep/sweep.sh SECONDS
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
BOX=$1 W=/tmp/sweep; mkdir -p $W
TASKS=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery
one() {  # name length budget program-and-options... (MODEL glm4_moe_lite and METHOD asynctls unless set)
  local name=$1 length=$2 budget=$3; shift 3
  timeout $BOX python3 $@ --model asynctls_hf/probes/checkpoints/${MODEL:-glm4_moe_lite} --methods ${METHOD:-asynctls} \
    --budgets $budget --tasks $TASKS --context-lengths $length --samples 20 --dtype float32 --no-progress \
    --out $W/$name >> $W/$name.log 2>&1
  echo "[$SECONDS s] $name rc=$?"
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
HEAD_MASS="-m asynctls_hf.eval --token-scoring head_mass"
for length in 16384 32768; do
  for budget in 512 1024 2048; do one head-mass_${budget}_$length $length $budget $HEAD_MASS & done
  METHOD=token-topk one token-topk_head-mass_1024_$length $length 1024 $HEAD_MASS &
done
for channels in 96 128; do one labels-${channels}_1024_32768 32768 1024 -m asynctls_hf.eval --label-channels $channels & done
# The Qwen3 probe, which meets the goal with summed scores: does head mass keep it?
for length in 16384 32768; do
  MODEL=qwen3 one qwen3_head-mass_1024_$length $length 1024 $HEAD_MASS &
  MODEL=qwen3 one qwen3_summed_1024_$length $length 1024 -m asynctls_hf.eval &
done
wait
grep -H "^| [a-z-]* @" $W/*/*/results.md
tail -n 3 $W/*.log | grep -i -B2 "error" | head -40
cd $W && tar cf $OUT/sweep.tar --exclude='*.png' .
