"""Decode-step time of a full-size model (random weights, bf16): stock transformers against AsyncTLS eager, replayed
from a CUDA graph, and graphed with the cache offloaded, in one run.

    asynctls-hf bench decode-step [--model qwen3-8b|glm-4.7-flash] [--context-lengths 1k,48k,96k]
        [--batches 1,4,8]
        [--methods stock,eager,graphed,graphed-offload,graphed-offload-token,graphed-offload-token-lag1,stock-compiled]
        [--steps 32] [--warmup 4] [--query-smoothing 0.3] [--copy-programs 0]
        [--out DIR] [AsyncTLS settings]

Methods: stock (the unpatched model, sdpa, DynamicCache), eager (AsyncTLS, cuda_graph=False), graphed (AsyncTLS, the
default: the decode forward replayed from a CUDA graph), graphed-offload (the same with offload=True, whole blocks,
lag 1: the paper's protocol), graphed-offload-token (offloaded, exact, fetching the selected tokens: prefetch_lag=0,
offload_granularity="token"), graphed-offload-token-lag1 (the selected tokens a step lacks fetched for the next
step: prefetch_lag=1, offload_granularity="token"), and stock-compiled (the unpatched model with a StaticCache of
the generation's length, its forward compiled as generate() compiles it for cache_implementation="static":
transformers' get_compiled_call, torch.compile in "reduce-overhead" mode, which replays CUDA graphs).

The cache is filled with random keys and values up to the context length (no prefill: the step's cost does not
depend on how the cache was filled), then each step is one model forward of one token per row, the next token the
argmax of the logits, and a host synchronization, as generate() makes. Reported: the median wall time of a step over
`--steps` steps after `--warmup` (graphed: the first two steps are the eager warm-up and the capture;
stock-compiled: the first ones compile and record), tokens/s (batch / step), the bytes a step must read at least
(the weights, plus the whole KV cache for stock or AsyncTLS's sparse reads: block summaries, the labels of the kept
blocks' tokens and the attended tokens) and the GB/s that amounts to against the H200's HBM (DESIGN.md section 4),
the peak GPU memory, and how many steps were replayed from a graph. A run that does not fit is reported as such.
Methods run in the order given, all in one process: a lag-1 method's copy stream slows every graph step timed
after it in the process by about 0.3 µs a kernel (BENCHMARKS.md, "The side stream"), so list the lag-1 methods
last, or time them in a run of their own.

With random weights consecutive steps' queries are nearly unrelated, so an offloaded cache finds a third to a half
of the wanted tokens resident, where a trained model finds 0.7-0.9 (EVAL.md's temporal locality).
`--query-smoothing BETA` makes consecutive queries related as a trained model's are, for every method alike: each
attention layer's query projection output is replaced by its running mean, q_t = (1 - BETA) q_(t-1) + BETA
proj(x_t) (two elementwise kernels per layer; 1, the default, leaves the model as it is). The hit rate column
shows what a setting gives. `--copy-programs N` caps each offload copy launch at N programs instead of the package's
cap (default_transport: a fifth of the SMs for lag 1's copies, a branch of the captured step beside the compute).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import statistics
import time
from pathlib import Path

import torch
from transformers import DynamicCache, StaticCache

import asynctls_hf
from asynctls_hf.api import cache_argument
from asynctls_hf.bench.generate_bench import did_not_fit, model_config
from asynctls_hf.bench.offload_transfer_bench import markdown_table, write_results
from asynctls_hf.cli_options import add_config_arguments, config_from_args, integer_list

DTYPE = torch.bfloat16
FILL_CHUNK = 8192
METHODS = ("stock", "eager", "graphed", "graphed-offload", "graphed-offload-token", "graphed-offload-token-lag1",
           "stock-compiled")
ASYNCTLS_SETTINGS = {"eager": dict(cuda_graph=False, offload=False), "graphed": dict(cuda_graph=True, offload=False),
                     "graphed-offload": dict(cuda_graph=True, offload=True, prefetch_lag=1,
                                             offload_granularity="block"),
                     "graphed-offload-token": dict(cuda_graph=True, offload=True, prefetch_lag=0,
                                                   offload_granularity="token"),
                     "graphed-offload-token-lag1": dict(cuda_graph=True, offload=True, prefetch_lag=1,
                                                        offload_granularity="token")}
HBM_BYTES_PER_S = 4.25e12
COLUMNS = [
    ("method", "method", "{}"),
    ("batch", "batch", "{}"),
    ("context", "context", "{}"),
    ("step_ms", "step ms", "{:.2f}"),
    ("tokens_per_s", "tokens/s", "{:.1f}"),
    ("floor_ms", "byte floor ms", "{:.2f}"),
    ("gbps", "achieved GB/s", "{:.0f}"),
    ("replayed", "steps replayed", "{}"),
    ("hit_rate", "hit rate", "{:.3f}"),
    ("copied_mb", "MB copied per step", "{:.0f}"),
    ("peak_gib", "peak GPU GiB", "{:.1f}"),
    ("status", "status", "{}"),
]


def kv_geometry(text_config) -> tuple[int, int, int]:
    """(groups, key width, value width) per token of the stock cache: Qwen3 K/V per KV head; GLM the latent and the
    roped key (the values are expanded from the latent)."""
    if getattr(text_config, "kv_lora_rank", None):
        return 1, text_config.kv_lora_rank + text_config.qk_rope_head_dim, 0
    return text_config.num_key_value_heads, text_config.head_dim, text_config.head_dim


def step_bytes(model, method: str, batch: int, context: int, config) -> int:
    """Bytes a decode step reads at least: the weights, plus the whole KV cache (stock) or the sparse reads."""
    text_config = model.config.get_text_config(decoder=True)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    if getattr(text_config, "n_routed_experts", None):  # a MoE step reads the routed experts of its tokens only
        experts = [module for module in model.modules() if type(module).__name__.endswith("Experts")]
        expert_bytes = sum(p.numel() * p.element_size() for module in experts for p in module.parameters())
        used = min(1.0, batch * text_config.num_experts_per_tok / text_config.n_routed_experts)
        weights -= int(expert_bytes * (1 - used))
    groups, key_width, value_width = kv_geometry(text_config)
    layers = text_config.num_hidden_layers
    if method.startswith("stock"):
        return weights + layers * batch * groups * context * (key_width + value_width) * DTYPE.itemsize
    latent = bool(getattr(text_config, "kv_lora_rank", None))
    label_width = config.label_channels_for(key_width, latent) * config.label_bits // 8 + 8
    per_group = (
        2 * (context // config.block_size) * key_width * DTYPE.itemsize
        + config.top_blocks * config.block_size * label_width
        + config.token_budget * (key_width + value_width) * DTYPE.itemsize
    )
    return weights + layers * batch * groups * per_group


def filled_stock_cache(model, batch: int, context: int, device: torch.device,
                       max_length: int | None = None) -> DynamicCache | StaticCache:
    """A DynamicCache (or, given max_length, a StaticCache of that length) holding `context` random tokens per
    layer, shaped as the stock attention caches them."""
    text_config = model.config.get_text_config(decoder=True)
    cache = DynamicCache(config=text_config) if max_length is None else StaticCache(text_config, max_length)
    generator = torch.Generator(device).manual_seed(context + batch)
    for layer in range(text_config.num_hidden_layers):
        if getattr(text_config, "kv_lora_rank", None):
            shapes = ((batch, 1, context, text_config.kv_lora_rank), (batch, 1, context, text_config.qk_rope_head_dim))
        else:
            shape = (batch, text_config.num_key_value_heads, context, text_config.head_dim)
            shapes = (shape, shape)
        keys, values = (torch.randn(size, generator=generator, device=device, dtype=DTYPE) for size in shapes)
        cache.update(keys, values, layer)
    return cache


def filled_asynctls_cache(model, batch: int, context: int, max_length: int, device: torch.device,
                          copy_programs: int | None = None):
    """An AsyncTLSCache for the patched `model` (placed as its config says) holding `context` random tokens per
    layer, indexed as prefill indexes them; an offloaded one's copy launches capped at `copy_programs` programs
    (None: default_transport's cap)."""
    cache = asynctls_hf.AsyncTLSCache.for_model(model, max_length=max_length)
    if copy_programs is not None:  # the cache's own factory, default_transport, with the cap
        cache.transport_factory = functools.partial(cache.transport_factory, copy_programs=copy_programs)
    cache.plan_placement(batch, DTYPE, [device] * len(cache.layers))
    cache.observe_attention_mask(None, batch, context, device)
    generator = torch.Generator(device).manual_seed(context + batch)
    heads = model.config.get_text_config(decoder=True).num_attention_heads
    for layer in cache.layers:
        query = torch.randn(batch, heads, 16, layer.key_width, generator=generator, device=device, dtype=DTYPE)
        for begin in range(0, context, FILL_CHUNK):
            tokens = min(FILL_CHUNK, context - begin)
            keys = torch.randn(batch, layer.num_groups, tokens, layer.key_width, generator=generator, device=device,
                               dtype=DTYPE)
            values = None if layer.values_in_keys else torch.randn(
                batch, layer.num_groups, tokens, layer.value_width, generator=generator, device=device, dtype=DTYPE
            )
            layer.append(keys, values, query, cache.row_start)
    return cache


class SmoothedQueries:
    """Forward hooks on every attention layer's query projection (q_proj, or q_b_proj under MLA's low-rank query)
    that return the running mean state = (1 - beta) state + beta output instead of the output [B, T, H * Dq]: the
    state is kept in place, so a captured CUDA graph updates it on every replay. A context manager; the hooks are
    removed on exit."""

    def __init__(self, model, beta: float):
        self.model, self.beta, self.handles, self.states = model, beta, [], {}

    def _hook(self, module, inputs, output: torch.Tensor) -> torch.Tensor:
        state = self.states.get(module)
        if state is None or state.shape != output.shape:
            self.states[module] = output.clone()
            return self.states[module]
        return state.mul_(1.0 - self.beta).add_(output, alpha=self.beta)

    def __enter__(self) -> SmoothedQueries:
        if self.beta < 1.0:
            for module in self.model.modules():
                projection = getattr(module, "q_b_proj", None) or getattr(module, "q_proj", None)
                if hasattr(module, "o_proj") and projection is not None:
                    self.handles.append(projection.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.states.clear()


def time_forward_steps(model, cache, batch: int, context: int, warmup: int, steps: int,
                       on_timing_start=None, forward=None) -> list[float]:
    """Wall seconds of each of `steps` decode forwards after `warmup`, each ending in a host synchronization;
    on_timing_start, when given, is called once the warm-up steps are done; forward replaces the model's call
    (the compiled one)."""
    device = next(model.parameters()).device
    forward = forward or model
    input_ids = torch.randint(0, model.config.get_text_config(decoder=True).vocab_size, (batch, 1), device=device)
    times = []
    for step in range(warmup + steps):
        if step == warmup and on_timing_start is not None:
            on_timing_start()
        began = time.perf_counter()
        position_ids = torch.full((batch, 1), context + step, device=device)
        logits = forward(input_ids=input_ids, position_ids=position_ids, use_cache=True,
                         logits_to_keep=1, **{cache_argument(model): cache}).logits
        input_ids = logits[:, -1].argmax(dim=-1, keepdim=True)
        input_ids.cpu()  # generate() reads the new tokens on the host (stopping criteria) every step
        if step >= warmup:
            times.append(time.perf_counter() - began)
    return times


def time_stock_compiled(model, batch: int, context: int, warmup: int, steps: int) -> list[float]:
    """time_forward_steps of the unpatched model over a StaticCache, through the compiled call generate() uses for
    cache_implementation="static" (compiled afresh for each shape, as a new generate() call would)."""
    device = next(model.parameters()).device
    torch._dynamo.reset()
    model.__dict__.pop("_compiled_call", None)
    cache = filled_stock_cache(model, batch, context, device, max_length=context + warmup + steps + 1)
    return time_forward_steps(model, cache, batch, context, warmup, steps,
                              forward=model.get_compiled_call(model.generation_config.compile_config))


def measure(model, method: str, batch: int, context: int, args, config) -> dict:
    device = next(model.parameters()).device
    row = {"method": method, "batch": batch, "context": context, "replayed": 0, "hit_rate": 1.0, "copied_mb": 0.0}
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    try:
        with torch.no_grad(), SmoothedQueries(model, args.query_smoothing):
            if method == "stock-compiled":
                times = time_stock_compiled(model, batch, context, args.warmup, args.steps)
            elif method == "stock":
                cache = filled_stock_cache(model, batch, context, device)
                times = time_forward_steps(model, cache, batch, context, args.warmup, args.steps)
            else:
                with asynctls_hf.patched(model, config.replace(**ASYNCTLS_SETTINGS[method])):
                    cache = filled_asynctls_cache(model, batch, context, context + args.warmup + args.steps + 1, device,
                                                  args.copy_programs or None)
                    times = time_forward_steps(model, cache, batch, context, args.warmup, args.steps,
                                               on_timing_start=cache.reset_stats)
                    stats = cache.stats()
                    row.update(replayed=cache.graph_replays, hit_rate=stats["hit_rate"],
                               copied_mb=stats["h2d_bytes"] / args.steps / 1e6)
    except (torch.OutOfMemoryError, asynctls_hf.CacheMemoryError) as error:
        return {**row, "step_ms": 0.0, "tokens_per_s": 0.0, "floor_ms": 0.0, "gbps": 0.0,
                "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30,
                "status": did_not_fit(error)}
    finally:
        cache = None
    step_s = statistics.median(times)
    floor_bytes = step_bytes(model, method, batch, context, config)
    return {**row, "step_ms": step_s * 1e3, "tokens_per_s": batch / step_s, "floor_ms": floor_bytes / HBM_BYTES_PER_S
            * 1e3, "gbps": floor_bytes / step_s / 1e9, "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30,
            "status": "ok"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="asynctls-hf bench decode-step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("qwen3-8b", "glm-4.7-flash"), default="qwen3-8b",
                        help="architecture (random weights, bf16; default: qwen3-8b)")
    parser.add_argument("--context-lengths", type=integer_list, default=[1024, 49152, 98304],
                        help="cached tokens; k = 1024 (default: 1k,48k,96k)")
    parser.add_argument("--batches", type=integer_list, default=[1, 4, 8], help="batch sizes (default: 1,4,8)")
    parser.add_argument("--methods", type=lambda text: [m for m in text.split(",") if m],
                        default=["stock", "eager", "graphed", "graphed-offload"],
                        help=f"comma-separated, of {', '.join(METHODS)} (default: all but stock-compiled)")
    parser.add_argument("--steps", type=int, default=32, help="timed steps (default: 32)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps first (default: 4)")
    parser.add_argument("--query-smoothing", type=float, default=1.0,
                        help="each query is this share of the new projection plus the rest of the previous query, "
                             "so consecutive steps want overlapping tokens as a trained model's do (default: 1, off)")
    parser.add_argument("--out", type=Path, default=Path("decode_step_results"),
                        help="folder for decode_step.json and decode_step.md")
    parser.add_argument("--copy-programs", type=int, default=0,
                        help="cap on each offload copy launch's programs (default: 0, the package's cap)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown method(s) {', '.join(sorted(unknown))}; the methods are {', '.join(METHODS)}")
    if not 0.0 < args.query_smoothing <= 1.0:
        parser.error(f"--query-smoothing is a share in (0, 1], got {args.query_smoothing}")
    if args.copy_programs < 0:
        parser.error(f"--copy-programs must be 0 (the package's cap) or positive, got {args.copy_programs}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("the decode-step benchmark needs a CUDA GPU")
    from transformers import AutoModelForCausalLM

    config = config_from_args(args)
    max_positions = max(args.context_lengths) + args.warmup + args.steps + 1024
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(model_config(args.model, max_positions), dtype=DTYPE).eval()
    environment = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "model": args.model,
                   "parameters": sum(p.numel() for p in model.parameters()), "config": dataclasses.asdict(config),
                   "query_smoothing": args.query_smoothing,
                   "date": time.strftime("%Y-%m-%d")}
    heading = (f"# Decode step\n\n{environment['device']}, torch {environment['torch']}, {args.model}, "
               f"{environment['date']}, query smoothing {args.query_smoothing}.\n\n")
    rows = []
    for context in args.context_lengths:
        for batch in args.batches:
            for method in args.methods:
                rows.append(measure(model, method, batch, context, args, config))
                print(" ".join(f"{header}={fmt.format(rows[-1][key])}" for key, header, fmt in COLUMNS), flush=True)
                write_results(args.out, "decode_step", heading, environment, rows, COLUMNS)
    print(markdown_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
