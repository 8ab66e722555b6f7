#!/bin/bash
# The GLM probe's list-recall phases, from M3 (the first GLM probe that finds the asked key: EVAL.md, "The GLM probe
# from scratch, gated on first tokens"). The Qwen3 probe's multi-answer tasks rose with a short dense list-recall
# phase at 1k and a phase at length at a third of the rate (EVAL.md, phases A and D); the same two phases here,
# gated on first tokens as M3 was. Ran 2026-12-06 on one H100 (a first run with 150 s and 300 s the same day
# returned files that were lost unread; its Q, not evaluated, logged first token 0.54 at 32k at its end):
#   1. OUT=dir bash THIS_FOLDER/run_next.sh list (509 s; Q's files were over the device's 8-file limit and came back
#      in the next call from /tmp/Q, with the 32k evaluations below)
#   2. on the same warm machine: tar Q, then MODEL=/tmp/Q bash $E niah_single_3@32768,niah_multikey_1@32768
#   3. R, Q continued at 1e-4 (300 s), then the 16k waves and those two 32k cells on R, as one inline command:
#      python3 -m asynctls_hf.probes.train --arch glm4_moe_lite --gate-metric first_accuracy --time-budget 300 \
#        --workers 14 --init /tmp/Q --stages 4096,16384,32768 --list-recall 0.5 --learning-rate 1e-4 --out /tmp/R
#   4. MODEL=/tmp/Q bash $E niah_single_1@32768,niah_single_2@32768 niah_multivalue@32768,niah_multiquery@32768
# P's and R's weights are not kept; Q's are the shipped GLM probe's (asynctls_hf/probes/checkpoints/glm4_moe_lite).
# The parts:
#   OUT=dir bash .../run_next.sh list      P: M3 at 1k, every recall sequence a list-recall one, 1e-3, 140 s; then Q:
#                                          P at 4k-32k with half list recall, 3e-4, 270 s; then full attention on Q,
#                                          20 samples, float32, the six needle tasks at 16k (two waves of three) as
#                                          far as the 600 s box allows. Back: $OUT/{P,Q}/, the logs, $OUT/eval_Q.tar.
#   OUT=dir bash .../run_next.sh eval DIR  the same 16k evaluation, then niah_single_3 and niah_multikey_1 at 32k
#                                          (one at a time). About 200 s. A Qwen3 probe's 32k float32 prefill peaks
#                                          near 86 GiB: with GQA, transformers asks SDPA for enable_gqa, which in
#                                          float32 only the math kernel serves (a [B, heads, S, S] score matrix).
#                                          The GLM probe has as many KV heads as query heads: two of its 32k cells
#                                          ran side by side on the H100 (step 2). Back: $OUT/eval_NAME.tar.
# Usage (repo root): OUT=dir bash eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/run_next.sh PART
source eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/common.sh
S16=niah_single_1@16384,niah_single_2@16384,niah_single_3@16384
M16=niah_multikey_1@16384,niah_multivalue@16384,niah_multiquery@16384
case ${1:?give the part to run: list or eval DIR} in
  list)
    train P 140 --init $D/M3 --stages 1024 --list-recall 1.0 --learning-rate 1e-3
    train Q 270 --init /tmp/P --stages 4096,16384,32768 --list-recall 0.5 --learning-rate 3e-4
    MODEL=/tmp/Q timeout $((580 - SECONDS)) bash $E $S16 $M16
    (cd /tmp/eval/Q && tar cf $OUT/eval_Q.tar .) ;;
  eval) MODEL=${2:?give the checkpoint directory} bash $E $S16 $M16 niah_single_3@32768 niah_multikey_1@32768 ;;
  *) echo "unknown part $1: list or eval DIR" >&2; exit 2 ;;
esac
