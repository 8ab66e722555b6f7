"""Run the accuracy harness from Python: a few RULER tasks, full attention against AsyncTLS, then print the table.

Runs offline on a CPU with the shipped Qwen3 probe model; --model PATH evaluates your own checkpoint. Results are
kept under --out and a key already there is not run again (`asynctls-hf eval` is the same harness on the command
line, with every task and method).

    python examples/ruler_eval.py --context 4096 --budget 1024 --samples 5
"""

import argparse

from asynctls_hf.eval.generation import load_model
from asynctls_hf.eval.runner import run_eval
from asynctls_hf.probes import load_probe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local checkpoint directory (default: the shipped Qwen3 probe)")
    parser.add_argument("--context", type=int, default=4096, help="tokens per sample, prompt plus answer room")
    parser.add_argument("--budget", type=int, default=1024, help="AsyncTLS token budget")
    parser.add_argument("--samples", type=int, default=5, help="samples per task")
    parser.add_argument("--tasks", default="niah_single_2,vt", help="comma-separated RULER task names")
    parser.add_argument("--out", default="ruler_eval_results", help="output directory")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model) if args.model else load_probe("qwen3")
    outcome = run_eval(
        model, tokenizer, methods=["full", "asynctls"], tasks=args.tasks.split(","), context_lengths=[args.context],
        budgets=[args.budget], samples=args.samples, out_dir=args.out,
    )
    print((outcome["run_dir"] / "results.md").read_text())


if __name__ == "__main__":
    main()
