#!/bin/bash
# The Qwen3 probe continued with --list-recall (300 s), then full attention, asynctls and quest at 512/1024/2048
# on the six needle tasks at 16k and 32k (10 samples, float32), one process per (method, budget, length).
# Back: $OUT/model.safetensors and $OUT/rest.tar (checkpoint's other files, logs, eval results).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
W=/tmp/work; mkdir -p $W/eval
timeout 340 python3 -m asynctls_hf.probes.train --arch qwen3 --init asynctls_hf/probes/checkpoints/qwen3 \
  --list-recall 0.5 --stages 4096,16384,32768 --learning-rate 1e-3 --time-budget 300 --workers 14 \
  --out $W/qwen3 > $W/train_qwen3.log 2>&1
echo "training rc=$?"; grep -v shards $W/train_qwen3.log | tail -2
cp $W/qwen3/model.safetensors $OUT/
TASKS=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery
one() {  # method budget length
  timeout 235 python3 -m asynctls_hf.eval --model $W/qwen3 --methods $1 --budgets $2 --tasks $TASKS \
    --context-lengths $3 --samples 10 --dtype float32 --no-progress --out $W/eval/$1_$2_$3 \
    > $W/eval/$1_$2_$3.log 2>&1
  echo "$1 $2 $3 rc=$?"
}
for length in 16384 32768; do
  one full 1024 $length &
  for budget in 512 1024 2048; do one asynctls $budget $length & one quest $budget $length & done
done
wait
cat $W/eval/full_1024_*/qwen3/results.md | grep "^| full"
cd $W && tar cf $OUT/rest.tar --exclude=model.safetensors qwen3 eval train_qwen3.log; ls -la $OUT
