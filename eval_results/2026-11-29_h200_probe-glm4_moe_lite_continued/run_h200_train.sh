#!/bin/bash
# Phase 3 of the Qwen3 probe (answers of a key's several values in document order, list recall 0.5) and a GLM
# continuation without list recall, side by side, 360 s each; then full attention at 16k (10 samples, float32):
# Qwen3 on the multi-answer tasks, GLM on the six needle tasks.
# Back: $OUT/qwen3.safetensors, $OUT/glm.safetensors, $OUT/rest.tar (other checkpoint files, logs, eval results).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
W=/tmp/work; mkdir -p $W/eval
timeout 400 python3 -m asynctls_hf.probes.train --arch qwen3 --init asynctls_hf/probes/checkpoints/qwen3 \
  --list-recall 0.5 --stages 4096,16384,32768 --learning-rate 1e-3 --time-budget 360 --workers 7 \
  --out $W/qwen3 > $W/train_qwen3.log 2>&1 &
timeout 400 python3 -m asynctls_hf.probes.train --arch glm4_moe_lite --init asynctls_hf/probes/checkpoints/glm4_moe_lite \
  --stages 4096,16384,32768 --learning-rate 1e-3 --time-budget 360 --workers 7 \
  --out $W/glm > $W/train_glm.log 2>&1 &
wait
for a in qwen3 glm; do echo "== $a"; grep -v shards $W/train_$a.log | tail -3; done
cp $W/qwen3/model.safetensors $OUT/qwen3.safetensors; cp $W/glm/model.safetensors $OUT/glm.safetensors
one() {  # model tasks
  timeout 150 python3 -m asynctls_hf.eval --model $W/$1 --methods full --budgets 1024 --tasks $2 \
    --context-lengths 16384 --samples 10 --dtype float32 --no-progress --out $W/eval/$1 > $W/eval/$1.log 2>&1
  echo "$1 rc=$?"
}
one qwen3 niah_multivalue,niah_multiquery &
one glm niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery &
wait
cat $W/eval/*/*/results.md 2>/dev/null | grep "^| \(full\|method\)"
cd $W && tar cf $OUT/rest.tar --exclude=model.safetensors qwen3 glm eval train_qwen3.log train_glm.log; ls -la $OUT
