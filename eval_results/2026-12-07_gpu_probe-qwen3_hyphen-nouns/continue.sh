#!/bin/bash
# The run hyphen-nouns of train.sh (J continued with --hyphen-nouns at 2-32k for 380 s, beside it) continued at 16k
# and 32k with half list recall for SECONDS more at each learning rate given, side by side (14 sample workers shared
# out), then full attention on the multi-answer tasks at 16k, 40 samples, float32, two processes at a time.
# It reads the checkpoint hyphen-nouns/ beside it. Its weights left the tree on 2026-12-07 (fifth session, to keep
# the tree under the GPU machine's 64 MiB); bring them back first with
#   git show 6cfc43b:eval_results/2026-12-07_gpu_probe-qwen3_hyphen-nouns/hyphen-nouns/model.safetensors > eval_results/2026-12-07_gpu_probe-qwen3_hyphen-nouns/hyphen-nouns/model.safetensors
# Usage (repo root): OUT=dir bash eval_results/2026-12-07_gpu_probe-qwen3_hyphen-nouns/continue.sh SECONDS RATE...
#   ran 2026-12-07 on an H100: continue.sh 100 1e-4 (the device time left; the checkpoint did not come back then)
# Back: $OUT/NAME.tar (the checkpoint), $OUT/eval_NAME.tar and $OUT/train_NAME.log (NAME: hyphen-nouns_more_RATE).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-07_gpu_probe-qwen3_hyphen-nouns; W=/tmp/work; BUDGET=$1; shift; WORKERS=$((14 / $#))
mkdir -p $W
for rate in "$@"; do
  NAME=hyphen-nouns_more_$rate
  ( timeout $((BUDGET + 60)) python3 -m asynctls_hf.probes.train --arch qwen3 --init $D/hyphen-nouns --hyphen-nouns \
      --stages 16384,32768 --list-recall 0.5 --learning-rate $rate --time-budget $BUDGET --workers $WORKERS \
      --out $W/$NAME > $W/train_$NAME.log 2>&1
    echo "[$SECONDS s] train $NAME rc=$?"; grep -v shards $W/train_$NAME.log | tail -2
    grep -v shards $W/train_$NAME.log > $OUT/train_$NAME.log; tar cf $OUT/$NAME.tar -C $W $NAME ) &
done
wait
for rate in "$@"; do
  NAME=hyphen-nouns_more_$rate; E=/tmp/eval/$NAME; mkdir -p $E
  score() {  # task length
    timeout 200 python3 -m asynctls_hf.eval --model $W/$NAME --methods full --tasks $1 --context-lengths $2 \
      --samples 40 --dtype float32 --no-progress --out $E/${1}_$2 > $E/${1}_$2.log 2>&1
    echo "[$SECONDS s] $NAME $1 $2 rc=$?"
  }
  score niah_multivalue 16384 & score niah_multiquery 16384 & wait
  for f in $E/*/*/results.md; do echo "$f: $(grep '^| full' $f)"; done
  (cd $E && tar cf $OUT/eval_$NAME.tar .)
done
