"""Decode step of one GLM-4.7-Flash attention layer: stock transformers against AsyncTLS, dense and sparse.

    asynctls-hf bench mla-layer --out DIR [--context-lengths 32k,64k,96k] [--batches 1,4,8]
        [--budget 1024] [--warmup 3] [--reps 15] [--no-graphs]

The layer is a Glm4MoeLiteAttention built from transformers' default Glm4MoeLiteConfig, which is GLM-4.7-Flash's
attention: hidden 2048, 20 heads, q_lora_rank 768, kv_lora_rank 512, qk_rope_head_dim 64, qk_nope_head_dim 192,
v_head_dim 256; bf16, random weights. Both caches hold the same `context` random latents and roped keys per row.
For each (context, batch) one decode step (a new token at position `context`) is timed for:
    stock   the module's own forward (SDPA) with a DynamicCache: it concatenates the new token onto the cached
            latent, runs kv_b_proj over every cached token (per-head K/V) and attends per head;
    dense   asynctls_hf's absorbed forward, token_budget > context: every token attended, in latent space;
    sparse  asynctls_hf's absorbed forward with token_budget --budget: two-level selection, then attention.
Two times per path, in milliseconds per decode step of this one layer, medians of --reps after --warmup calls,
L2 flushed before each:
    eager   CUDA events around one eager call: what this layer costs in an eager model, launch overhead included;
    graph   CUDA events around the replay of the call captured in a CUDA graph: the GPU time alone ("n/a" when
            the call cannot be captured).
The cache is cropped back to `context` tokens before every call, untimed, so every call sees the same shapes, as
the 47 layers of one decode step do: work done once per step for all layers is left out, i.e. the AsyncTLS decode
plan (made before the timed call) and the cuDNN attention plan that the stock SDPA builds for each new length
(about 30 ms of host time on an H200 with torch 2.11, once per step). "dense GB/s" is the latent the dense step
must read (batch * context * 576 * 2 bytes) over its graph time (eager time without graphs). "dense rel. err"
compares the first dense output with the stock one (same input, same cache). A path that runs out of GPU memory
is recorded as "OOM". Writes mla_layer_bench.json and mla_layer_bench.md to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from transformers import Glm4MoeLiteConfig
from transformers.cache_utils import DynamicCache
from transformers.models.glm4_moe_lite.modeling_glm4_moe_lite import (
    Glm4MoeLiteAttention,
    Glm4MoeLiteRotaryEmbedding,
)

from asynctls_hf.api import cache_argument
from asynctls_hf.bench.ops_bench import capture_graph
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.cli_options import integer_list
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.patches import glm4_moe_lite

DTYPE = torch.bfloat16
APPEND_CHUNK = 8192
GRAPH_CALLS = 4  # calls that capture_graph makes (warm-up and capture), each appending a token
L2_FLUSH_BYTES = 256 * 1024**2
PATHS = ("stock", "dense", "sparse")
# The module's cache argument: `past_key_values` up to transformers 5.2x, `cache` after.


def build_layer(device: torch.device) -> tuple[Glm4MoeLiteAttention, Glm4MoeLiteRotaryEmbedding]:
    config = Glm4MoeLiteConfig()
    config._attn_implementation = "sdpa"  # what from_pretrained picks by default
    with device:
        module = Glm4MoeLiteAttention(config, layer_idx=0).to(DTYPE).eval()
        rotary = Glm4MoeLiteRotaryEmbedding(config)
    return module, rotary


def stock_cache(latent: torch.Tensor, key_rot: torch.Tensor) -> DynamicCache:
    """A DynamicCache whose layer 0 holds latent [B, 1, S, 512] and key_rot [B, 1, S, 64], as the module caches."""
    cache = DynamicCache()
    cache.update(latent, key_rot, 0)
    return cache


def asynctls_cache(
    module: Glm4MoeLiteAttention, config: AsyncTLSConfig, latent: torch.Tensor, key_rot: torch.Tensor
) -> AsyncTLSCache:
    """An AsyncTLSCache for one layer holding the same tokens, indexed by layer.append in chunks."""
    batch, _, context, _ = latent.shape
    cache = AsyncTLSCache(
        glm4_moe_lite.layer_geometry(module.config)[:1], config, max_length=context + GRAPH_CALLS + 1
    )
    cache.observe_attention_mask(None, batch, context, latent.device)
    layer, row_start = cache.layers[0], cache.row_start
    # The query only chooses the label channels on the first append; a few random tokens of it are enough.
    query = torch.randn(batch, module.num_heads, 16, layer.key_width, dtype=DTYPE, device=latent.device)
    for begin in range(0, context, APPEND_CHUNK):
        chunk = slice(begin, min(begin + APPEND_CHUNK, context))
        layer.append(torch.cat([latent[:, :, chunk], key_rot[:, :, chunk]], dim=-1), None, query, row_start)
    return cache


def median_ms(step: Callable, prepare: Callable, warmup: int, reps: int, device: torch.device) -> tuple[float, object]:
    """Median milliseconds of step() over `reps` calls after `warmup` calls; prepare() runs untimed before each.

    Returns (median, the first call's output). CUDA events on a GPU, wall clock elsewhere.
    """
    first_output, times = None, []
    for call in range(warmup + reps):
        prepare()
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            output = step()
            end.record()
            end.synchronize()
            elapsed = start.elapsed_time(end)
        else:
            begin = time.perf_counter()
            output = step()
            elapsed = 1e3 * (time.perf_counter() - begin)
        if call == 0:
            first_output = output
        elif call >= warmup:
            times.append(elapsed)
    return statistics.median(times), first_output


def time_path(path: str, module, inputs: dict, args, device: torch.device) -> dict:
    """Build `path`'s cache from the cell's latent and time its decode step: {eager_ms, graph_ms, output, ...}."""
    latent, key_rot = inputs["latent"], inputs["key_rot"]
    hidden_states, position_embeddings, l2_flush = inputs["hidden_states"], inputs["position_embeddings"], inputs["l2"]
    context = latent.shape[2]
    if path == "stock":
        cache = stock_cache(latent, key_rot)

        def step():
            return module(hidden_states, position_embeddings, None, **{cache_argument(module): cache})[0]
    else:
        budget = args.budget if path == "sparse" else 1 << (context + GRAPH_CALLS + 1).bit_length()
        config = AsyncTLSConfig(token_budget=budget, top_blocks=max(128, budget // 64))
        cache = asynctls_cache(module, config, latent, key_rot)

        def step():
            return glm4_moe_lite.forward(module, cache, hidden_states, position_embeddings)[0]

    def prepare():
        extra = cache.get_seq_length() - context
        if extra:
            cache.crop(-extra)
        if path != "stock":
            cache.decode_plan(context + 1, device)
        l2_flush.zero_()

    result = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        result["eager_ms"], result["output"] = median_ms(step, prepare, args.warmup, args.reps, device)
        if path != "stock":
            result["attended_tokens"] = cache.stats()["attended_tokens"]
        if device.type == "cuda" and args.graphs:
            prepare()
            try:
                graph = capture_graph(step)
            except RuntimeError as error:  # not capturable: report it and time the other paths
                result["graph_ms"], result["graph_error"] = "n/a", str(error).splitlines()[0]
            else:
                result["graph_ms"], _ = median_ms(graph.replay, l2_flush.zero_, args.warmup, args.reps, device)
                del graph
    if device.type == "cuda":
        result["peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return result


def run_cell(module, rotary, context: int, batch: int, args, device: torch.device) -> dict:
    """Time the three paths at one (context, batch); a path that runs out of memory is recorded as "OOM"."""
    generator = torch.Generator(device=device).manual_seed(context + batch)
    hidden_states = torch.randn(batch, 1, module.hidden_size, dtype=DTYPE, device=device, generator=generator)
    position_ids = torch.full((batch, 1), context, dtype=torch.long, device=device)
    inputs = {
        "latent": torch.randn(batch, 1, context, module.kv_lora_rank, dtype=DTYPE, device=device, generator=generator),
        "key_rot": torch.randn(
            batch, 1, context, module.qk_rope_head_dim, dtype=DTYPE, device=device, generator=generator
        ),
        "hidden_states": hidden_states,
        "position_embeddings": rotary(hidden_states, position_ids),
        "l2": torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=device),
    }
    row: dict = {"context": context, "batch": batch}
    outputs = {}
    for path in PATHS:
        try:
            result = time_path(path, module, inputs, args, device)
        except torch.cuda.OutOfMemoryError:
            row[f"{path}_eager_ms"] = "OOM"
        else:
            outputs[path] = result.pop("output")
            row.update({f"{path}_{key}": value for key, value in result.items()})
        if device.type == "cuda":
            torch.cuda.empty_cache()

    for timing in ("eager", "graph"):
        stock = row.get(f"stock_{timing}_ms")
        for path in ("dense", "sparse"):
            ours = row.get(f"{path}_{timing}_ms")
            if isinstance(stock, float) and isinstance(ours, float):
                row[f"{path}_{timing}_speedup"] = stock / ours
    dense_ms = row.get("dense_graph_ms", row.get("dense_eager_ms"))
    if isinstance(dense_ms, float):
        key_width = module.kv_lora_rank + module.qk_rope_head_dim
        row["dense_gbps"] = batch * context * key_width * DTYPE.itemsize / dense_ms / 1e6
    if "stock" in outputs and "dense" in outputs:
        reference = outputs["stock"].float()
        row["dense_rel_err"] = ((outputs["dense"].float() - reference).norm() / reference.norm()).item()
    return row


COLUMNS = [  # (key, header, format)
    ("context", "context", "{}"),
    ("batch", "batch", "{}"),
    ("stock_eager_ms", "stock eager", "{:.3f}"),
    ("dense_eager_ms", "dense eager", "{:.3f}"),
    ("sparse_eager_ms", "sparse eager", "{:.3f}"),
    ("dense_eager_speedup", "dense speedup eager", "{:.1f}x"),
    ("sparse_eager_speedup", "sparse speedup eager", "{:.1f}x"),
    ("stock_graph_ms", "stock graph", "{:.3f}"),
    ("dense_graph_ms", "dense graph", "{:.3f}"),
    ("sparse_graph_ms", "sparse graph", "{:.3f}"),
    ("dense_graph_speedup", "dense speedup graph", "{:.1f}x"),
    ("sparse_graph_speedup", "sparse speedup graph", "{:.1f}x"),
    ("dense_gbps", "dense GB/s", "{:.0f}"),
    ("dense_rel_err", "dense rel. err", "{:.1e}"),
    ("stock_peak_gb", "stock peak GB", "{:.1f}"),
]


def format_cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key, "-")
    return fmt.format(value) if isinstance(value, (int, float)) else str(value)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(header for _, header, _ in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(row, key, fmt) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m asynctls_hf.bench.mla_layer_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("mla_layer_bench_results"),
                        help="folder for the JSON and markdown results (default: mla_layer_bench_results)")
    parser.add_argument("--context-lengths", type=integer_list, default=integer_list("32k,64k,96k"),
                        help="cached tokens, comma-separated; k = 1024 (default: 32k,64k,96k)")
    parser.add_argument("--batches", type=integer_list, default=[1, 4, 8], help="batch sizes (default: 1,4,8)")
    parser.add_argument("--budget", type=int, default=1024, help="token_budget of the sparse path")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per path and cell")
    parser.add_argument("--reps", type=int, default=15, help="timed calls per path and cell (the median is kept)")
    parser.add_argument("--no-graphs", dest="graphs", action="store_false", help="skip the CUDA-graph timings")
    parser.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a quick check that it runs)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "mla_layer_bench needs a CUDA GPU (torch.cuda.is_available() is False); --device cpu checks that it runs"
        )
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # the device key under which plans are cached
    environment = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "dtype": str(DTYPE),
        "budget": args.budget,
        "warmup": args.warmup,
        "reps": args.reps,
        "graphs": args.graphs,
    }
    if device.type == "cuda":
        import triton

        environment["triton"] = triton.__version__
    print(json.dumps(environment), flush=True)
    torch.manual_seed(0)
    module, rotary = build_layer(device)
    rows = []
    started = time.perf_counter()
    for context in args.context_lengths:
        for batch in args.batches:
            rows.append(run_cell(module, rotary, context, batch, args, device))
            print(" ".join(f"{header}={format_cell(rows[-1], key, fmt)}" for key, header, fmt in COLUMNS), flush=True)
    elapsed = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    shape_names = ("hidden_size", "num_heads", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim",
                   "v_head_dim")
    attention_shape = {name: getattr(module, name) for name in shape_names}
    result = {"environment": environment, "attention": attention_shape, "rows": rows, "elapsed_s": elapsed}
    (args.out / "mla_layer_bench.json").write_text(json.dumps(result, indent=1))
    table = markdown_table(rows)
    heading = (
        f"# One GLM-4.7-Flash attention layer, one decode step\n\n{environment['device']}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {DTYPE}; milliseconds per decode step of one layer, medians of "
        f"{args.reps} (eager: CUDA events around an eager call; graph: around a CUDA-graph replay, GPU time alone); "
        f"sparse token_budget {args.budget}; speedups against the stock transformers path at the same timing. "
        "See the module docstring for what is timed.\n\n"
    )
    (args.out / "mla_layer_bench.md").write_text(heading + table + "\n")
    print(f"\n{table}\n\n({elapsed:.0f} s; written to {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
