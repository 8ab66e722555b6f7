#!/bin/bash
# Tiny probes of both architectures (2 layers, hidden 128, 4 heads of 32; probes.train.model_config) trained from
# scratch on a synthetic associative recall (recall.py), on the development CPU, the two architectures side by
# side (one thread each), learning rate 2e-3, 32 sequences of 64 tokens a step, six needles and six questions a
# sequence, one-word keys. Run from the repo root; logs beside this script. A first try at 256 tokens, two-word keys,
# eight needles and four questions (`recall.py ARCH --steps 2000`, side by side; *_256-tokens.log) stayed at chance
# and was stopped by hand after 1150 (GLM) and 1550 (Qwen3) steps.
#   *_long.log         needles "for K is V", 12000 steps
#   *_bare.log         bare pairs "K V" (classic associative recall), 4000 steps
#   *_by-question.log  as *_long.log, 3000 steps, logging the accuracy of each question by its place
set -u
export PYTHONPATH=$PWD
D=eval_results/2026-12-06_cpu_probes_associative-recall
run() {  # log name, flags
  local name=$1; shift
  for arch in qwen3 glm4_moe_lite; do
    python $D/recall.py $arch --length 64 --needles 6 --queries 6 --key-words 1 "$@" > $D/${arch}_$name.log 2>&1 &
  done
  wait
}
run long --steps 12000
run bare --bare --steps 4000
run by-question --steps 3000
# The GLM architecture's variants, side by side, 3000 steps as by-question: queries through a normalized latent
# of 64 and unroped query/key width 96 (three times the roped, as GLM-4.7-Flash's 192 and 64); every MLP dense.
python $D/recall.py glm4_moe_lite --q-lora-rank 64 --nope-dim 96 --steps 3000 --length 64 --needles 6 --queries 6 \
  --key-words 1 > $D/glm4_moe_lite_flash-shaped.log 2>&1 &
python $D/recall.py glm4_moe_lite --dense --steps 3000 --length 64 --needles 6 --queries 6 --key-words 1 \
  > $D/glm4_moe_lite_dense.log 2>&1 &
wait
# Qwen3 without its query and key norms (MLA has no norm on its queries), alone.
python $D/recall.py qwen3 --no-qk-norm --steps 3000 --length 64 --needles 6 --queries 6 --key-words 1 \
  > $D/qwen3_no-qk-norm.log 2>&1
