"""`python -m asynctls_hf.eval` with token selection ranking candidates by their best head (head_max.py).

    PYTHONPATH=. python eval_results/2026-11-30_cpu_probe-glm4_moe_lite_token-scoring/head_max_eval.py \
        --model asynctls_hf/probes/checkpoints/glm4_moe_lite --methods asynctls --budgets 512 ... (the eval's arguments)
"""

from __future__ import annotations

import sys

import head_max  # beside this script

from asynctls_hf.eval.runner import main

if __name__ == "__main__":
    head_max.install()
    raise SystemExit(main(sys.argv[1:]))
