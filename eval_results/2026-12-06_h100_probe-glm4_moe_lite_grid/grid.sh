#!/bin/bash
# The shipped GLM probe's accuracy grid (the probe-models issue): the five sparse methods at budgets 512, 1024 and
# 2048 on the six needle tasks, 20 samples, float32, seed 0 (the samples of full attention's cells, which ran on
# 2026-12-06 in ../2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/eval_Q/), with attention recall over
# 16 decode steps per key. One process per (method, budget) at context length $1, all at once, within $2 seconds;
# a key (task) that finished is on disk, so a second call with the same length runs only what is missing if its
# tarball is unpacked into $W first. With LOCALITY=1 the same call also measures temporal locality (niah_single_2,
# budget 1024, 4 samples x 32 steps, 16k and 32k) and the offload engine's traffic.
# Back: $OUT/grid_$1.tar (and $OUT/locality.tar).
# The H100 calls of 2026-12-06 (torch 2.11, transformers 5.17): `LOCALITY=1 grid.sh 16384 520` (300 s; the
# locality process failed: locality_h100_failed/, and locality_cpu/ has the CPU run), then `grid.sh 32768 545` (cut
# at 545 s with 60 of the 90 keys on disk) and the same command again on the warm machine (293 s, the other 30).
# Usage (repo root): OUT=dir bash eval_results/2026-12-06_h100_probe-glm4_moe_lite_grid/grid.sh LENGTH SECONDS
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
LENGTH=$1 BOX=$2 MODEL=asynctls_hf/probes/checkpoints/glm4_moe_lite W=/tmp/grid; mkdir -p $W
TASKS=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery
one() {  # method budget
  local name=$1_$2_$LENGTH
  timeout $BOX ${PY:-python3} -m asynctls_hf.eval --model $MODEL --methods $1 --budgets $2 --tasks $TASKS \
    --context-lengths $LENGTH --samples ${SAMPLES:-20} --dtype float32 --fidelity-steps 16 --no-progress \
    --out $W/$name >> $W/$name.log 2>&1
  echo "[$SECONDS s] $name rc=$?"
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if [ "${LOCALITY:-0}" = 1 ]; then
  mkdir -p $W/locality
  timeout $BOX ${PY:-python3} -m asynctls_hf.eval.locality --model $MODEL --task niah_single_2 \
    --context-lengths ${LOCALITY_LENGTHS:-16384,32768} --samples 4 --steps 32 --budget 1024 --dtype float32 --offload-traffic \
    --out $W/locality > $W/locality/locality.log 2>&1 &
fi
for method in asynctls quest double-sparsity token-topk streaming; do
  for budget in 512 1024 2048; do one $method $budget & done
done
wait
nvidia-smi --query-gpu=memory.used --format=csv,noheader
grep -h "^| [a-z-]* @" $W/*/glm4_moe_lite/results.md | sort
tail -n 3 $W/*.log | grep -i -B2 "error" | head -40
cd $W && tar cf $OUT/grid_$LENGTH.tar --exclude=locality *_$LENGTH *_$LENGTH.log
[ -d locality ] && tar cf $OUT/locality.tar locality
ls -la $OUT
