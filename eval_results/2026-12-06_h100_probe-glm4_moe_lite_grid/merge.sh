#!/bin/bash
# Gathers the grid's result files (grid.sh's tarballs unpacked into this folder as METHOD_BUDGET_LENGTH/) and full
# attention's (../2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/eval_Q/, model directory Q, the same
# samples) into merged/glm4_moe_lite/, then runs the harness over every key: all are on disk, so it runs nothing and
# writes merged/glm4_moe_lite/results.md and accuracy_vs_budget.png. The unpacked METHOD_BUDGET_LENGTH/ folders were
# removed after merging (merged/ holds every file they had); their logs stay here.
# Usage (repo root): bash eval_results/2026-12-06_h100_probe-glm4_moe_lite_grid/merge.sh
set -eu
D=eval_results/2026-12-06_h100_probe-glm4_moe_lite_grid; M=$D/merged/glm4_moe_lite
mkdir -p $M
for f in $D/*_*_*/glm4_moe_lite/*/*.json; do
  task=$(basename $(dirname $f)); mkdir -p $M/$task; cp $f $M/$task/
done
for f in $D/../2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/eval_Q/*/Q/*/full_*.json; do
  task=$(basename $(dirname $f)); mkdir -p $M/$task
  sed 's/"model": "Q"/"model": "glm4_moe_lite"/' $f > $M/$task/$(basename $f)
done
PYTHONPATH=$PWD ${PY:-.venv/bin/python} -m asynctls_hf.eval --model asynctls_hf/probes/checkpoints/glm4_moe_lite \
  --methods full,asynctls,quest,double-sparsity,token-topk,streaming --budgets 512,1024,2048 \
  --tasks niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery \
  --context-lengths 16384,32768 --samples 20 --dtype float32 --no-progress --out $D/merged
