#!/bin/bash
# Is the GLM probe's missing retrieval head the architecture's or its training run's? Tiny probes of both
# architectures (2 layers, hidden 128, 4 heads of 32) trained from scratch side by side on the development CPU, at
# 512 tokens (prompts of 256-512), 4k tokens a step, the default mix and learning rate (2e-3), 1200 s each, logging
# the first answer tokens' accuracy (first_accuracy: retrieval) beside the answer accuracy. Then first_token.py and
# needle_attention.py on each. Run from the repo root; results beside this script.
set -u
D=eval_results/2026-12-03_cpu_probes_tiny-from-scratch
for arch in qwen3 glm4_moe_lite; do
  python -m asynctls_hf.probes.train --arch $arch --hidden-size 128 --num-layers 2 --num-heads 4 --num-kv-heads 2 \
    --head-dim 32 --stages 512 --tokens-per-step 4096 --time-budget 1200 --device cpu --workers 1 \
    --out /tmp/tiny_$arch > $D/train_$arch.log 2>&1 &
done
wait
for arch in qwen3 glm4_moe_lite; do
  python eval_results/2026-12-03_cpu_probe-glm4_moe_lite_first-weight/first_token.py /tmp/tiny_$arch \
    > $D/first_token_$arch.txt 2>/dev/null
  python eval_results/2026-12-03_cpu_probes_needle-attention/needle_attention.py /tmp/tiny_$arch \
    > $D/needle_attention_$arch.txt 2>/dev/null
done
