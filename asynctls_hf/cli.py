"""The `asynctls-hf` command."""

from __future__ import annotations

import argparse

import asynctls_hf


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
    parser.print_help()
    return 0
