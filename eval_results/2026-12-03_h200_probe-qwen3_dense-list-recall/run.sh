#!/bin/bash
# The shipped Qwen3 probe continued on the H200: phase A at 1k tokens with every recall sequence a list-recall one
# (120 s; the CPU pilot of 2026-12-03 took niah_multivalue/multiquery from 30/38 to 79/66 at 1k this way), then
# phase B at 4-32k with half list recall (150 s, as the shipped probe's last phase). Back: $OUT/{A,B}/ (weights,
# training.json) and the logs. The call of 2026-12-03 then ran full attention on the six needle tasks at 16k and 32k,
# all twelve processes at once, which ran out of GPU memory: eval.sh has the schedule that ran.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
W=/tmp/work; mkdir -p $W
train() {  # name init seconds extra-args...
  local name=$1 init=$2 seconds=$3; shift 3
  echo "[$SECONDS s] train $name"
  timeout $((seconds + 40)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $init --learning-rate 1e-3 \
    --time-budget $seconds --workers 14 --out $W/$name "$@" > $OUT/train_$name.log 2>&1
  echo "[$SECONDS s] train $name rc=$?"; grep -v shards $OUT/train_$name.log | tail -2
  mkdir -p $OUT/$name && cp $W/$name/model.safetensors $W/$name/training.json $OUT/$name/
}
train A asynctls_hf/probes/checkpoints/qwen3 120 --stages 1024 --list-recall 1.0
train B $W/A 150 --stages 4096,16384,32768 --list-recall 0.5
