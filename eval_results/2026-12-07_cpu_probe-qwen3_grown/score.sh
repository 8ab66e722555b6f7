# score NAME MODEL: full attention on the multi-answer tasks at 2k, 20 samples, float32, into $D/eval_NAME/TASK;
# prints the scores. Sourced by the CPU pilots' run.sh (this folder's and eval_results/2026-12-07_cpu_probe-glm_sorted/).
score() {
  for task in niah_multivalue niah_multiquery; do
    python3 -m asynctls_hf.eval --model $2 --methods full --tasks $task --context-lengths 2048 --samples 20 \
      --dtype float32 --no-progress --out $D/eval_$1/$task > /dev/null 2>&1
  done
  for task in niah_multivalue niah_multiquery; do echo "$1 $task: $(grep '^| full' $D/eval_$1/$task/*/results.md)"; done
}
