"""The `asynctls-hf` command: demo, generate, eval, bench, models.

Every command that takes a model reads a local checkpoint directory (`--model PATH`, nothing is downloaded) and
shares the options --device, --dtype and the AsyncTLS settings (--budget, --block-size, ...). A problem with the
command line is reported in one line naming it and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from pathlib import Path

import torch
from transformers import TextStreamer

import asynctls_hf
from asynctls_hf.api import returned_cache
from asynctls_hf.cli_options import (
    CommandLineError,
    add_config_arguments,
    add_device_arguments,
    check_checkpoint,
    check_fits,
    config_from_args,
    load_checkpoint,
)
from asynctls_hf.timing import DecodeClock

BENCHMARKS = {
    "ops": "asynctls_hf.bench.ops_bench",
    "mla-layer": "asynctls_hf.bench.mla_layer_bench",
    "profile-ops": "asynctls_hf.bench.profile_operator",
    "offload-transfer": "asynctls_hf.bench.offload_transfer_bench",
    "offload-decode": "asynctls_hf.bench.offload_decode_bench",
    "generate": "asynctls_hf.bench.generate_bench",
    "decode-step": "asynctls_hf.bench.decode_step_bench",
    "profile-step": "asynctls_hf.bench.profile_step",
}


def build_parser() -> argparse.ArgumentParser:
    from asynctls_hf import demo
    from asynctls_hf.eval import locality, needle_trace, runner

    analyses = [
        (runner, "eval", "run the RULER / LongBench accuracy harness"),
        (locality, "locality", "temporal locality of block selection (what the offload engine's prefetch relies on)"),
        (needle_trace, "needle-trace", "at which selection stage (blocks or labels) each method keeps or loses the "
                                       "needle"),
    ]

    parser = argparse.ArgumentParser(
        prog="asynctls-hf",
        description="AsyncTLS two-level sparse attention for Hugging Face Transformers.",
    )
    parser.add_argument("--version", action="version", version=f"asynctls-hf {asynctls_hf.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo_parser = commands.add_parser(
        "demo", help="answer a needle-in-a-haystack question with full attention and AsyncTLS (offline, CPU)",
        description=demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(run=demo.run_from_args)

    generate = commands.add_parser(
        "generate", help="stream a model's continuation of a prompt file, decoded with AsyncTLS",
        description="Patch a local checkpoint with AsyncTLS, stream its continuation of the prompt to stdout "
                    "(decoding follows the checkpoint's generation config), then print decode tokens/s and "
                    "the cache statistics to stderr.",
    )
    generate.add_argument("--model", required=True, help="local checkpoint directory of a supported model")
    generate.add_argument("--prompt-file", required=True, type=Path, help="text file holding the prompt")
    generate.add_argument("--max-new-tokens", type=int, default=256, help="most tokens generated (default: 256)")
    generate.add_argument("--seed", type=int, default=0, help="random seed, for checkpoints that sample (default: 0)")
    add_device_arguments(generate)
    add_config_arguments(generate)
    generate.set_defaults(run=run_generate)

    for module, name, summary in analyses:
        analysis = commands.add_parser(
            name, help=summary, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(analysis)
        analysis.set_defaults(run=functools.partial(run_analysis, module))

    bench = commands.add_parser(
        "bench",
        help="GPU benchmarks: " + ", ".join(BENCHMARKS),
        description="Run a GPU benchmark; the options after its name are its own (asynctls-hf bench NAME --help).",
    )
    bench.add_argument("benchmark", choices=sorted(BENCHMARKS), help="which benchmark")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    bench.set_defaults(run=run_bench)

    commands.add_parser("models", help="list the supported model types").set_defaults(run=list_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (CommandLineError, asynctls_hf.UnsupportedModelError, asynctls_hf.CacheMemoryError) as error:
        print(f"asynctls-hf {args.command}: error: {error}", file=sys.stderr)
        return 2


def list_models(args: argparse.Namespace) -> int:
    print("\n".join(asynctls_hf.supported_model_types()))
    return 0


def _rounded(value):
    return round(value, 3) if isinstance(value, float) else value


def run_bench(args: argparse.Namespace) -> int:
    return importlib.import_module(BENCHMARKS[args.benchmark]).main(args.options)


def run_analysis(module, args: argparse.Namespace) -> int:
    """An eval-family command: check the checkpoint path, then the module's own run_from_args."""
    check_checkpoint(args.model)
    return module.run_from_args(args)


def run_generate(args: argparse.Namespace) -> int:
    """Stream the continuation of args.prompt_file to stdout, then the decode speed and cache stats to stderr."""
    if not args.prompt_file.is_file():
        raise CommandLineError(f"prompt file {args.prompt_file} does not exist; pass --prompt-file with a text file")
    prompt = args.prompt_file.read_text()
    config = config_from_args(args)
    model, tokenizer = load_checkpoint(args.model, args.device, args.dtype)
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    prompt_tokens = inputs["input_ids"].shape[1]
    check_fits(model, prompt_tokens, args.max_new_tokens, "shorten the prompt or lower --max-new-tokens")

    asynctls_hf.patch(model, config)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    torch.manual_seed(args.seed)
    # generate() builds the AsyncTLS cache, preallocated for prompt + max_new_tokens after a check that it fits.
    with torch.no_grad(), DecodeClock(model) as clock:
        output = model.generate(**inputs, max_new_tokens=args.max_new_tokens, streamer=streamer,
                                return_dict_in_generate=True)
    speed = clock.tokens_per_second()
    print(f"prompt {prompt_tokens} tokens, {output.sequences.shape[1] - prompt_tokens} generated, decode "
          f"{'n/a' if speed is None else f'{speed:.1f}'} tokens/s", file=sys.stderr)
    cache = returned_cache(output)
    stats = {name: value for name, value in cache.stats().items() if name != "layers"}  # per-layer: stats() itself
    print("cache stats: " + ", ".join(f"{name}={_rounded(value)}" for name, value in stats.items()), file=sys.stderr)
    return 0
