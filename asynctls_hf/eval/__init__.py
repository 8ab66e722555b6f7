"""Accuracy harness: RULER and LongBench, with every method decoded by the same engine at the same budget.

    python -m asynctls_hf.eval --model PATH --tasks ruler --budgets 512,1024 --context-lengths 4096

Needs the `eval` extra (`pip install asynctls-hf[eval]`).
"""

from asynctls_hf.eval.methods import METHODS, method_config
from asynctls_hf.eval.runner import TASKS, run_eval

__all__ = ["METHODS", "TASKS", "method_config", "run_eval"]
