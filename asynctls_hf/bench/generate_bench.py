"""End-to-end generate() on a full-size model with random weights: stock transformers against AsyncTLS, resident
and offloaded, each at the batch sizes given, in one run.

    asynctls-hf bench generate [--model qwen3-8b|glm-4.7-flash] [--context-lengths 48k,96k]
        [--runs stock:4,asynctls:4,asynctls:7,offload:4] [--new-tokens 32] [--out DIR] [AsyncTLS settings]

Each run is METHOD:BATCH, METHOD one of stock (the unpatched model, sdpa, DynamicCache), asynctls (patched, resident
cache, decode replayed from a CUDA graph), offload (the same with offload=True, whole blocks, prefetch_lag 1: the
paper's protocol), offload-token (offloaded, exact, only the selected tokens copied: prefetch_lag 0,
offload_granularity "token"), offload-token-lag1 (the selected tokens a step lacks copied for the next step:
prefetch_lag 1, granularity "token"), eager (asynctls with cuda_graph=False). For every context length and run it
generates `--new-tokens` tokens greedily from `batch` random prompts of that length and reports the prefill time,
the decode tokens/s (all rows; the prefill left out, asynctls_hf.timing.DecodeClock) and the mean step time, which
include the first steps' one-time costs (kernel compilation, CUDA-graph capture), the median step time and the
tokens/s it gives (the steady state of a longer generation), the peak GPU memory, and the bytes an offloaded cache
read back from pinned host memory for prefill attention (stats' context_read_bytes). A run that does not fit
(CacheMemoryError before prefill, or CUDA out of memory) is reported as such and the benchmark goes on. Random
weights: speed does not depend on their values. Runs go in the order given, in one process: a lag-1 run's copy
stream slows every graph step of the runs after it (BENCHMARKS.md, "The side stream"), so give lag-1 runs last.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import itertools
import statistics
import time
from pathlib import Path

import torch

import asynctls_hf
from asynctls_hf.api import returned_cache
from asynctls_hf.bench.offload_transfer_bench import markdown_table, write_results
from asynctls_hf.cli_options import add_config_arguments, config_from_args, integer_list
from asynctls_hf.timing import DecodeClock

METHODS = {"stock": None, "asynctls": dict(offload=False),
           "offload": dict(offload=True, prefetch_lag=1, offload_granularity="block"),
           "offload-token": dict(offload=True, prefetch_lag=0, offload_granularity="token"),
           "offload-token-lag1": dict(offload=True, prefetch_lag=1, offload_granularity="token"),
           "eager": dict(offload=False, cuda_graph=False)}
COLUMNS = [
    ("method", "method", "{}"),
    ("batch", "batch", "{}"),
    ("context", "context", "{}"),
    ("prefill_s", "prefill s", "{:.1f}"),
    ("step_ms", "decode step ms (mean)", "{:.1f}"),
    ("tokens_per_s", "decode tokens/s", "{:.1f}"),
    ("median_step_ms", "median step ms", "{:.1f}"),
    ("steady_tokens_per_s", "steady tokens/s", "{:.1f}"),
    ("peak_gib", "peak GPU GiB", "{:.1f}"),
    ("context_read_gb", "prefill host reads GB", "{:.1f}"),
    ("status", "status", "{}"),
]


def did_not_fit(error: Exception) -> str:
    """A run's status when it does not fit the GPU: the error's first two sentences (CUDA's out-of-memory error:
    what it tried to allocate)."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return "does not fit: " + ". ".join(first_line.split(". ")[:2])[:200]


def model_config(name: str, max_positions: int):
    """The published architecture of `name`, with room for `max_positions` positions."""
    from transformers import Glm4MoeLiteConfig, Qwen3Config

    if name == "qwen3-8b":
        return Qwen3Config(
            vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
            num_attention_heads=32, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
            max_position_embeddings=max_positions, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        )
    return Glm4MoeLiteConfig(
        vocab_size=154880, hidden_size=2048, intermediate_size=10240, moe_intermediate_size=1536,
        num_hidden_layers=47, num_attention_heads=20, num_key_value_heads=20, n_routed_experts=64,
        num_experts_per_tok=4, n_shared_experts=1, first_k_dense_replace=1, kv_lora_rank=512, q_lora_rank=768,
        qk_rope_head_dim=64, qk_nope_head_dim=192, v_head_dim=256, max_position_embeddings=max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
    )


def parse_runs(text: str) -> list[tuple[str, int]]:
    runs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        method, _, batch = item.partition(":")
        if method not in METHODS or not batch.isdigit() or int(batch) < 1:
            raise argparse.ArgumentTypeError(f"expected METHOD:BATCH with METHOD in {', '.join(METHODS)}; got {item!r}")
        runs.append((method, int(batch)))
    if not runs:
        raise argparse.ArgumentTypeError("expected at least one METHOD:BATCH")
    return runs


def generate_once(model, method: str, batch: int, context: int, new_tokens: int, config) -> dict:
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(context + batch)
    input_ids = torch.randint(100, model.config.vocab_size - 100, (batch, context), device=device, generator=generator)
    row = {"method": method, "batch": batch, "context": context}
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    patch = METHODS[method]
    try:
        with (asynctls_hf.patched(model, config.replace(**patch)) if patch is not None else contextlib.nullcontext()):
            started = time.perf_counter()
            with DecodeClock(model) as clock, torch.no_grad():
                output = model.generate(
                    input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, return_dict_in_generate=True,
                )
    except (torch.OutOfMemoryError, asynctls_hf.CacheMemoryError) as error:
        return {**row, "prefill_s": 0.0, "step_ms": 0.0, "tokens_per_s": 0.0, "median_step_ms": 0.0,
                "steady_tokens_per_s": 0.0,
                "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30, "context_read_gb": 0.0,
                "status": did_not_fit(error)}
    cache = returned_cache(output)
    context_read = cache.stats()["context_read_bytes"] if isinstance(cache, asynctls_hf.AsyncTLSCache) else 0
    tokens_per_s = clock.tokens_per_second(batch)
    median_step = statistics.median(after - before for before, after in itertools.pairwise(clock.stamps))
    return {**row, "prefill_s": clock.stamps[0] - started, "step_ms": batch / tokens_per_s * 1e3,
            "tokens_per_s": tokens_per_s, "median_step_ms": median_step * 1e3,
            "steady_tokens_per_s": batch / median_step, "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30,
            "context_read_gb": context_read / 1e9, "status": "ok"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="asynctls-hf bench generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("qwen3-8b", "glm-4.7-flash"), default="qwen3-8b",
                        help="architecture (random weights, bf16; default: qwen3-8b)")
    parser.add_argument("--context-lengths", type=integer_list, default=[49152, 98304],
                        help="prompt tokens; k = 1024 (default: 48k,96k)")
    parser.add_argument("--runs", type=parse_runs, default=parse_runs("stock:4,asynctls:4,asynctls:7,offload:4"),
                        help="METHOD:BATCH list, METHOD in stock, asynctls, offload, offload-token, "
                        "offload-token-lag1, eager (default: stock:4,asynctls:4,asynctls:7,offload:4)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per row (default: 32)")
    parser.add_argument("--out", type=Path, default=Path("generate_results"),
                        help="folder for generate.json and generate.md")
    add_config_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("the generate benchmark needs a CUDA GPU")
    from transformers import AutoModelForCausalLM

    config = config_from_args(args)
    max_positions = max(args.context_lengths) + args.new_tokens + 1024
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(model_config(args.model, max_positions), dtype=torch.bfloat16).eval()
    environment = {
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "model": args.model,
        "parameters": sum(p.numel() for p in model.parameters()), "new_tokens": args.new_tokens,
        "config": dataclasses.asdict(config),
    }
    heading = f"# generate() end to end\n\n{environment['device']}, torch {environment['torch']}, {args.model}.\n\n"
    rows = []
    for context in args.context_lengths:
        for method, batch in args.runs:
            rows.append(generate_once(model, method, batch, context, args.new_tokens, config))
            print(" ".join(f"{header}={fmt.format(rows[-1][key])}" for key, header, fmt in COLUMNS), flush=True)
            write_results(args.out, "generate", heading, environment, rows, COLUMNS)
    print(markdown_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
