# Sourced by run.sh and run_next.sh (repo root, OUT set): the folders and the gated GLM training of one phase.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
D=eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate
E=eval_results/2026-12-03_h200_probe-qwen3_dense-list-recall/eval.sh
train() {  # name, seconds, train flags...: /tmp/NAME, and back in $OUT/NAME/ with its log $OUT/train_NAME.log
  local name=$1 seconds=$2; shift 2
  mkdir -p $OUT/$name
  timeout $((seconds + 45)) python3 -m asynctls_hf.probes.train --arch glm4_moe_lite --gate-metric first_accuracy \
    --time-budget $seconds --workers 14 --out /tmp/$name "$@" > $OUT/train_$name.log 2>&1
  echo "[$SECONDS s] train $name rc=$?"; grep -v shards $OUT/train_$name.log | tail -2
  cp /tmp/$name/* $OUT/$name/
}
