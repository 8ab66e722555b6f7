"""The `asynctls-hf` command."""

from __future__ import annotations

import argparse
import importlib

import asynctls_hf

BENCHMARKS = {
    "ops": "asynctls_hf.bench.ops_bench",
    "mla-layer": "asynctls_hf.bench.mla_layer_bench",
    "profile-ops": "asynctls_hf.bench.profile_operator",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asynctls-hf",
        description="AsyncTLS two-level sparse attention for Hugging Face Transformers.",
    )
    parser.add_argument("--version", action="version", version=f"asynctls-hf {asynctls_hf.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("models", help="list the supported model types")
    from asynctls_hf.eval import runner

    runner.add_arguments(commands.add_parser("eval", help="run the RULER / LongBench accuracy harness"))
    bench = commands.add_parser(
        "bench",
        help="GPU benchmarks: " + ", ".join(BENCHMARKS),
        description="Run a GPU benchmark; the options after its name are its own (asynctls-hf bench NAME --help).",
    )
    bench.add_argument("benchmark", choices=sorted(BENCHMARKS), help="which benchmark")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "models":
        print("\n".join(asynctls_hf.supported_model_types()))
        return 0
    if args.command == "eval":
        from asynctls_hf.eval import runner

        return runner.run_from_args(args)
    if args.command == "bench":
        return importlib.import_module(BENCHMARKS[args.benchmark]).main(args.options)
    parser.print_help()
    return 0
