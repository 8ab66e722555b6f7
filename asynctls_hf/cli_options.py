"""Options shared by the asynctls-hf commands, and the checks that turn a bad command line into a clear error."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from asynctls_hf.config import (
    BACKEND_CHOICES,
    LABEL_BITS_CHOICES,
    OFFLOAD_GRANULARITY_CHOICES,
    TOKEN_SCORING_CHOICES,
    AsyncTLSConfig,
)

# AsyncTLSConfig fields that every command taking a model accepts, with their help (defaults are appended).
CONFIG_OPTIONS = {
    "block_size": "tokens per block summary, a power of two",
    "top_blocks": "blocks kept by block filtering per KV head and decode step",
    "sink_tokens": "first tokens of each row, always attended",
    "local_tokens": "most recent tokens, always attended",
    "label_channels": "key channels per token label",
    "label_bits": "bits per label channel: 4, 8 or 16",
    "token_scoring": "how token selection ranks candidates: head_mass (each head's softmax mass) or summed (query "
                     "summed over heads)",
    "backend": "auto (Triton kernels on CUDA, torch elsewhere), torch or triton",
    "offload": "keep the KV cache in pinned host memory: false, true, or auto (only when it does not fit the GPU)",
    "prefetch_lag": "with offload: 0 is exact; 1 attends over what is resident while copying (faster, not exact)",
    "offload_granularity": "with offload: block (whole blocks) or token (only the selected tokens a step lacks)",
    "prefetch_successors": "with offload by tokens and lag 1: tokens after each selected one also copied",
    "cuda_graph": "on CUDA, replay the decode step from a CUDA graph: true or false",
}
# How the fields whose default depends on the model (None) pick it.
DEFAULT_DESCRIPTIONS = {
    "label_channels": "a quarter of the key width; a third for MLA",
    "token_scoring": "head_mass for MLA, summed for GQA",
}
# The options with a fixed set of values: argparse names the choices when given another.
CHOICES = {
    "label_bits": LABEL_BITS_CHOICES,
    "token_scoring": TOKEN_SCORING_CHOICES,
    "backend": BACKEND_CHOICES,
    "offload_granularity": OFFLOAD_GRANULARITY_CHOICES,
}
BOOLEAN_CHOICES = {"false": False, "true": True}
OFFLOAD_CHOICES = {"false": False, "true": True, "auto": "auto"}
CONFIG_DEFAULTS = {field.name: field.default for field in dataclasses.fields(AsyncTLSConfig)}
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


class CommandLineError(Exception):
    """A problem with what the user asked for; the message names it and the fix. The command exits with 2."""


def integer_list(text: str) -> list[int]:
    """Comma-separated positive integers, a `k` suffix meaning 1024: '32k,48k,98304' -> [32768, 49152, 98304]."""
    counts = []
    for item in filter(None, (item.strip().lower() for item in text.split(","))):
        try:
            counts.append(int(item[:-1]) * 1024 if item.endswith("k") else int(item))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers such as 16384,32k; got {text!r}"
            ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return counts


def token_count(text: str) -> int:
    """One positive integer, a `k` suffix meaning 1024: '16k' -> 16384."""
    counts = integer_list(text)
    if len(counts) != 1:
        raise argparse.ArgumentTypeError(f"expected one integer such as 16384 or 16k, got {text!r}")
    return counts[0]


def add_device_arguments(parser: argparse.ArgumentParser, default_device: str = "auto") -> None:
    """--device and --dtype, as load_model takes them."""
    parser.add_argument("--device", default=default_device,
                        help=f"auto (CUDA when available), cpu, cuda, cuda:1, ... (default: {default_device})")
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                        help="model dtype; auto keeps the checkpoint's on CUDA and uses float32 on the CPU")


def add_config_arguments(parser: argparse.ArgumentParser, token_budget: bool = True,
                         title: str = "AsyncTLS settings") -> None:
    """One option per AsyncTLSConfig field of CONFIG_OPTIONS (and --budget for token_budget when asked);
    an option left out keeps the AsyncTLSConfig default."""
    group = parser.add_argument_group(title)
    if token_budget:
        group.add_argument("--budget", dest="token_budget", type=int, metavar="TOKENS",
                           help="tokens attended per KV head and decode step, sinks and local window included "
                                f"(default: {CONFIG_DEFAULTS['token_budget']})")
    for name, description in CONFIG_OPTIONS.items():
        default = CONFIG_DEFAULTS[name]
        shown = DEFAULT_DESCRIPTIONS.get(name, default) if default is None else default
        value_type = {"backend": str, "offload": offload_choice, "cuda_graph": boolean_choice,
                      "offload_granularity": str, "token_scoring": str}.get(name, int)
        group.add_argument(f"--{name.replace('_', '-')}", type=value_type, choices=CHOICES.get(name),
                           help=f"{description} (default: {str(shown).lower() if isinstance(shown, bool) else shown})")


def boolean_choice(text: str) -> bool:
    """A true/false option's value."""
    if text.lower() not in BOOLEAN_CHOICES:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return BOOLEAN_CHOICES[text.lower()]


def offload_choice(text: str) -> bool | str:
    """--offload's value: false, true or auto."""
    if text.lower() not in OFFLOAD_CHOICES:
        raise argparse.ArgumentTypeError(f"expected false, true or auto, got {text!r}")
    return OFFLOAD_CHOICES[text.lower()]


def config_fields(args: argparse.Namespace) -> dict:
    """The AsyncTLSConfig fields given on the command line (options left out are absent)."""
    names = ("token_budget", *CONFIG_OPTIONS)
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def config_from_args(args: argparse.Namespace) -> AsyncTLSConfig:
    """The AsyncTLSConfig of parsed arguments; CommandLineError names an invalid setting."""
    try:
        return AsyncTLSConfig(**config_fields(args))
    except ValueError as error:
        raise CommandLineError(f"invalid AsyncTLS settings: {error}") from None


def check_checkpoint(path: str | Path) -> None:
    """Raise CommandLineError unless `path` is a local checkpoint directory of a model type AsyncTLS supports."""
    from transformers import AutoConfig

    from asynctls_hf.patches import UnsupportedModelError, family_for

    path = Path(path)
    if not path.exists():
        raise CommandLineError(f"model path {path} does not exist; pass --model with a local checkpoint directory "
                               "(nothing is downloaded)")
    if not (path / "config.json").is_file():
        raise CommandLineError(f"{path} is not a Hugging Face checkpoint: it has no config.json; pass --model with "
                               "the directory that save_pretrained() wrote")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise CommandLineError(f"cannot read the config of {path}: {error}") from None
    try:
        family_for(config)
    except UnsupportedModelError as error:
        raise CommandLineError(f"{path}: {error}; pass --model with a checkpoint of a supported type") from None


def load_checkpoint(path: str | Path, device: str, dtype: str):
    """(model, tokenizer) of a checked local checkpoint; CommandLineError when it cannot be loaded."""
    from asynctls_hf.eval.generation import load_model

    check_checkpoint(path)
    try:
        return load_model(str(path), device, dtype)
    except (OSError, ValueError) as error:
        raise CommandLineError(f"cannot load {path} as a causal LM with its tokenizer: {error}") from None


def max_positions(model) -> int | None:
    """The model's max_position_embeddings, None when its config sets none."""
    return getattr(model.config.get_text_config(decoder=True), "max_position_embeddings", None)


def check_fits(model, prompt_tokens: int, max_new_tokens: int, shorten: str) -> None:
    """Raise CommandLineError when the prompt and the generation overflow the model's max_position_embeddings.

    shorten: how to fix it, for the message.
    """
    limit = max_positions(model)
    if limit is not None and prompt_tokens + max_new_tokens > limit:
        raise CommandLineError(
            f"the prompt ({prompt_tokens} tokens) plus up to {max_new_tokens} new tokens is longer than the model's "
            f"max_position_embeddings ({limit}); {shorten}"
        )
