"""Decode-step operator benchmark on a CUDA GPU: dense attention against AsyncTLS's sparse operator.

    asynctls-hf bench ops [--attention gqa|mla|both] [--context-lengths 32k,48k,64k,96k]
        [--batches 1,4,8] [--budgets 512,1024,2048] [--out DIR]

Shapes: "gqa" is one Qwen3-8B layer (32 query heads, 8 KV heads of 128, bf16); "mla" is one GLM-4.7-Flash layer
decoded in absorbed form (20 heads over a 576-wide latent whose first 512 channels are the values).
For each (model, context, batch, budget) it times, with CUDA events (triton.testing.do_bench: warm-up, L2
flushed before every run, median):
    dense     the fastest dense decode attention PyTorch offers here (SDPA backends x GQA layouts; for MLA
              also two matmuls over the latent), over contiguous K/V of `context` tokens;
    stages    the kernels of attention.select_tokens, each alone: block scoring, block top-k (ops.select_top_k),
              candidate label scores (ops.candidate_scores), token top-k with the fixed slots
              (ops.select_tokens_into); then sparse attention;
    operator  attention.select_tokens + sparse attention exactly as the patched model runs them, replayed
              from a CUDA graph (GPU time of a captured decode step) and eagerly (wall clock per call from
              Python, launch overhead included); "other ops" is the graph time the stages do not explain.
Achieved GB/s = bytes the op must read / its time: dense reads all K/V; the sparse operator reads the block
summaries, the labels of the candidate tokens and the K/V of the selected tokens.
The cache storage is a real AsyncTLSLayer filled with random keys through layer.append.
Writes ops_bench.json and ops_bench.md to --out. Any failure raises.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from asynctls_hf import ops
from asynctls_hf.attention import select_tokens
from asynctls_hf.cache import AsyncTLSCache, AsyncTLSLayer, LayerGeometry
from asynctls_hf.cli_options import integer_list
from asynctls_hf.config import AsyncTLSConfig

DTYPE = torch.bfloat16
APPEND_CHUNK = 8192
LAYER_CONFIG = dict(block_size=64, top_blocks=128, label_bits=4, sink_tokens=16, local_tokens=64, backend="triton")


@dataclass(frozen=True)
class ModelShape:
    """One attention layer as the decode step sees it: NG groups of G query heads, key and value widths."""

    name: str
    groups: int
    heads_per_group: int
    key_width: int
    value_width: int
    values_in_keys: bool
    scaling: float

    @property
    def geometry(self) -> LayerGeometry:
        return LayerGeometry(self.groups, self.key_width, self.value_width, self.values_in_keys)

    def kv_bytes_per_token(self) -> int:
        """K/V bytes one token costs a group (the MLA latent holds its values)."""
        width = self.key_width if self.values_in_keys else self.key_width + self.value_width
        return width * torch.finfo(DTYPE).bits // 8


MODELS = {
    "gqa": ModelShape("gqa", groups=8, heads_per_group=4, key_width=128, value_width=128, values_in_keys=False,
                      scaling=128**-0.5),
    "mla": ModelShape("mla", groups=1, heads_per_group=20, key_width=576, value_width=512, values_in_keys=True,
                      scaling=192**-0.5),
}


# ---- timing ----------------------------------------------------------------------------------------------


def gpu_time_us(fn, warmup_ms: float, rep_ms: float) -> float:
    """Median GPU time of fn() in microseconds (CUDA events, L2 flushed before each run)."""
    import triton.testing

    return 1000.0 * triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")


def wall_time_us(fn, rep_ms: float) -> float:
    """Median over 5 rounds of the wall-clock time per call of back-to-back fn() calls, in microseconds."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    calls = max(3, int(rep_ms / 1000.0 / 5 / max(time.perf_counter() - start, 1e-6)))
    rounds = []
    for _ in range(5):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        rounds.append((time.perf_counter() - start) / calls)
    return 1e6 * sorted(rounds)[2]


def capture_graph(fn) -> torch.cuda.CUDAGraph:
    """fn() captured in a CUDA graph after a warm-up on a side stream (which also compiles the kernels)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


# ---- dense baseline --------------------------------------------------------------------------------------


def dense_candidates(shape: ModelShape, batch: int, context: int, device: torch.device) -> dict:
    """Dense decode implementations over contiguous random K/V of `context` tokens: name -> fn."""
    heads = shape.groups * shape.heads_per_group
    query = torch.randn(batch, heads, 1, shape.key_width, dtype=DTYPE, device=device)
    keys = torch.randn(batch, shape.groups, context, shape.key_width, dtype=DTYPE, device=device)
    if shape.values_in_keys:
        values = keys[..., : shape.value_width]
    else:
        values = torch.randn(batch, shape.groups, context, shape.value_width, dtype=DTYPE, device=device)
    layouts = {"enable_gqa": (keys, values, True)}
    if shape.groups == 1:  # one KV head: a stride-0 view gives every query head its K/V without a copy
        layouts["broadcast"] = (keys.expand(-1, heads, -1, -1), values.expand(-1, heads, -1, -1), False)
    else:
        layouts["expanded"] = (
            keys.repeat_interleave(shape.heads_per_group, dim=1),
            values.repeat_interleave(shape.heads_per_group, dim=1),
            False,
        )
    from torch.nn.attention import SDPBackend, sdpa_kernel

    candidates = {}
    for layout, (layout_keys, layout_values, gqa) in layouts.items():
        # The math backend is left out: it materialises expanded K/V and is never the fastest.
        for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):

            def sdpa(layout_keys=layout_keys, layout_values=layout_values, gqa=gqa, backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(
                        query, layout_keys, layout_values, scale=shape.scaling, enable_gqa=gqa
                    )

            candidates[f"sdpa-{backend.name.lower()}/{layout}"] = sdpa
    if shape.values_in_keys:
        latent = keys[:, 0]  # [B, S, 576]
        grouped_query = query[:, :, 0]  # [B, H, 576]

        def absorbed_matmuls():
            scores = torch.matmul(grouped_query, latent.transpose(1, 2)).float() * shape.scaling
            return torch.matmul(scores.softmax(dim=-1).to(DTYPE), latent[..., : shape.value_width])

        candidates["matmul-softmax-matmul"] = absorbed_matmuls
    return candidates


def time_dense(shape: ModelShape, batch: int, context: int, device: torch.device, args) -> tuple[float, str, dict]:
    """Time every dense candidate PyTorch can run here; returns (best µs, its name, {name: µs or why not})."""
    results = {}
    for name, fn in dense_candidates(shape, batch, context, device).items():
        try:
            fn()
            torch.cuda.synchronize()
        except RuntimeError as error:  # this SDPA backend does not take these shapes: reported, not timed
            results[name] = f"unavailable: {str(error).splitlines()[0][:120]}"
            continue
        results[name] = gpu_time_us(fn, args.warmup_ms, args.rep_ms)
    timed = {name: value for name, value in results.items() if isinstance(value, float)}
    if not timed:
        raise RuntimeError(f"no dense attention implementation ran for {shape.name} at {context}: {results}")
    best = min(timed, key=timed.get)
    return timed[best], best, results


# ---- sparse operator -------------------------------------------------------------------------------------


def build_layer(shape: ModelShape, batch: int, context: int, device: torch.device) -> AsyncTLSLayer:
    """An AsyncTLSLayer holding `context` random tokens per row, indexed by layer.append in chunks."""
    config = AsyncTLSConfig(**LAYER_CONFIG)
    layer = AsyncTLSCache([shape.geometry], config, max_length=context).layers[0]
    row_start = torch.zeros(batch, dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    # The query only chooses the label channels on the first append; a few tokens of it are enough.
    query = torch.randn(batch, shape.groups * shape.heads_per_group, 16, shape.key_width, dtype=DTYPE,
                        device=device, generator=generator)
    for begin in range(0, context, APPEND_CHUNK):
        tokens = min(APPEND_CHUNK, context - begin)
        keys = torch.randn(batch, shape.groups, tokens, shape.key_width, dtype=DTYPE, device=device,
                           generator=generator)
        values = None
        if not shape.values_in_keys:
            values = torch.randn(batch, shape.groups, tokens, shape.value_width, dtype=DTYPE, device=device,
                                 generator=generator)
        layer.append(keys, values, query, row_start)
    return layer


def sparse_bytes(shape: ModelShape, layer: AsyncTLSLayer, config: AsyncTLSConfig, batch: int, n_blocks: int,
                 n_candidates: int) -> dict:
    """Bytes each sparse stage must read: block summaries, candidate labels, selected K/V."""
    rows = batch * shape.groups
    label_bytes = layer.label_codes.shape[-1] * layer.label_codes.element_size() + 2 * layer.label_scale.element_size()
    return {
        "block_scores": rows * n_blocks * 2 * shape.key_width * layer.block_max.element_size(),
        "candidate_scores": rows * n_candidates * label_bytes,
        "attention": rows * config.token_budget * shape.kv_bytes_per_token(),
    }


def check_kernels(query, layer, plan, config, shape) -> None:
    """Fail loudly if a timed kernel disagrees with the PyTorch reference on this very input, or if the Triton
    selection picks other tokens than the PyTorch one."""
    n_blocks = plan.n_blocks
    block_max, block_min = layer.block_max[:, :, :n_blocks], layer.block_min[:, :, :n_blocks]
    scores = ops.block_scores(query, block_max, block_min, plan.block_valid, backend="triton")
    reference = ops.block_scores(query, block_max, block_min, plan.block_valid, backend="torch")
    finite = reference.isfinite()
    if not torch.equal(finite, scores.isfinite()) or _relative_error(scores[finite], reference[finite]) > 1e-4:
        raise AssertionError("Triton block_scores disagrees with the reference")
    slots, valid = select_tokens(query, layer, plan, config, scaling=shape.scaling)
    output = ops.sparse_attention(query, layer.keys, layer.values, slots, valid, shape.scaling, backend="triton")
    reference = ops.sparse_attention(query, layer.keys, layer.values, slots, valid, shape.scaling, backend="torch")
    if _relative_error(output, reference) > 2e-2:
        raise AssertionError("Triton sparse_attention disagrees with the reference")
    # Scores that differ in the last bits may swap the tokens at the selection's edge: 1% of slack.
    reference_slots, reference_valid = select_tokens(
        query, layer, plan, config.replace(backend="torch"), scaling=shape.scaling
    )
    chosen = (slots[..., None] == reference_slots[..., None, :]).any(dim=-1) & valid
    if not torch.equal(reference_valid.sum(dim=-1), valid.sum(dim=-1)) or chosen.sum() < 0.99 * valid.sum():
        raise AssertionError("the Triton token selection picks other tokens than the PyTorch one")


def _relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    return ((output.double() - reference.double()).norm() / reference.double().norm()).item()


def time_sparse(shape: ModelShape, layer: AsyncTLSLayer, batch: int, context: int, budget: int, check: bool,
                args) -> dict:
    """Stage and operator times (µs) and bytes of the sparse decode step at one context and budget."""
    device = layer.keys.device
    config = AsyncTLSConfig(**LAYER_CONFIG, token_budget=budget)
    plan_cache = AsyncTLSCache([shape.geometry], config)
    plan_cache.observe_attention_mask(None, batch, 1, device)
    plan = plan_cache.decode_plan(context, device)
    if plan.dense:
        raise ValueError(f"context {context} fits the budget {budget}: nothing sparse to time")
    query = torch.randn(batch, shape.groups, shape.heads_per_group, shape.key_width, dtype=DTYPE, device=device)
    if check:
        check_kernels(query, layer, plan, config, shape)

    def operator():
        slots, valid = select_tokens(query, layer, plan, config, scaling=shape.scaling)
        return ops.sparse_attention(query, layer.keys, layer.values, slots, valid, shape.scaling,
                                    backend=config.backend)

    # Intermediate tensors of one step, so that each stage can be timed alone on realistic inputs.
    n_blocks = plan.n_blocks
    block_max, block_min = layer.block_max[:, :, :n_blocks], layer.block_min[:, :, :n_blocks]
    block_scores = ops.block_scores(query, block_max, block_min, plan.block_valid, backend=config.backend)
    kept_count = min(config.top_blocks, n_blocks)
    kept_scores, kept_blocks = ops.select_top_k(block_scores, kept_count, backend=config.backend)
    candidate_arguments = (query, layer.label_channels, layer.label_codes, layer.label_scale, layer.label_zero,
                           kept_blocks, kept_scores, plan.candidate_low, plan.candidate_high, config.block_size,
                           config.label_bits, shape.scaling if layer.token_scoring == "head_mass" else None)
    candidates, token_scores = ops.candidate_scores(*candidate_arguments, backend=config.backend)
    selected_count = min(config.selected_tokens, candidates.shape[-1])
    slots, valid = select_tokens(query, layer, plan, config, scaling=shape.scaling)
    stages = {
        "block_scores": lambda: ops.block_scores(query, block_max, block_min, plan.block_valid,
                                                 backend=config.backend),
        "block_topk": lambda: ops.select_top_k(block_scores, kept_count, backend=config.backend),
        "candidate_scores": lambda: ops.candidate_scores(*candidate_arguments, backend=config.backend),
        "token_topk": lambda: ops.select_tokens_into(token_scores, candidates, selected_count, plan.fixed_slots,
                                                     plan.fixed_valid, backend=config.backend),
        "attention": lambda: ops.sparse_attention(query, layer.keys, layer.values, slots, valid, shape.scaling,
                                                  backend=config.backend),
    }
    times = {f"{name}_us": gpu_time_us(fn, args.warmup_ms, args.rep_ms) for name, fn in stages.items()}
    graph = capture_graph(operator)
    times["operator_graph_us"] = gpu_time_us(graph.replay, args.warmup_ms, args.rep_ms)
    del graph
    times["operator_eager_us"] = wall_time_us(operator, args.rep_ms)
    times["glue_us"] = times["operator_graph_us"] - sum(times[f"{name}_us"] for name in stages)
    stage_bytes = sparse_bytes(shape, layer, config, batch, n_blocks, candidates.shape[-1])
    times["sparse_bytes"] = sum(stage_bytes.values())
    for name, count in stage_bytes.items():
        times[f"{name}_gbps"] = count / times[f"{name}_us"] / 1e3
    times["operator_gbps"] = times["sparse_bytes"] / times["operator_graph_us"] / 1e3
    return times


# ---- driver ----------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m asynctls_hf.bench.ops_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--attention", choices=("gqa", "mla", "both"), default="both",
                        help="gqa: the Qwen3-8B shape (32 query / 8 KV heads of 128); mla: the GLM-4.7-Flash shape "
                        "(20 heads over a 576-wide key, 512-wide value); both (default)")
    parser.add_argument("--context-lengths", type=integer_list, default=integer_list("32k,48k,64k,96k"),
                        help="cached tokens, comma-separated; k = 1024 (default: 32k,48k,64k,96k)")
    parser.add_argument("--batches", type=integer_list, default=[1, 4, 8], help="batch sizes (default: 1,4,8)")
    parser.add_argument("--budgets", type=integer_list, default=[512, 1024, 2048],
                        help="token budgets of the sparse operator (default: 512,1024,2048)")
    parser.add_argument("--out", type=Path, default=Path("ops_bench_results"),
                        help="folder for ops_bench.json and ops_bench.md (default: ops_bench_results)")
    parser.add_argument("--replot", type=Path, default=None,
                        help="measure nothing: redraw OUT/ops_speedup.png from this ops_bench.json")
    parser.add_argument("--warmup-ms", type=float, default=10.0, help="do_bench warm-up per measurement")
    parser.add_argument("--rep-ms", type=float, default=40.0, help="do_bench measuring time per measurement")
    return parser.parse_args(argv)


COLUMNS = [  # (key, header, format)
    ("model", "model", "{}"),
    ("context", "context", "{}"),
    ("batch", "batch", "{}"),
    ("budget", "budget", "{}"),
    ("dense_us", "dense µs", "{:.1f}"),
    ("dense_impl", "dense impl", "{}"),
    ("dense_gbps", "dense GB/s", "{:.0f}"),
    ("block_scores_us", "block scores µs", "{:.1f}"),
    ("block_topk_us", "block top-k µs", "{:.1f}"),
    ("candidate_scores_us", "candidate scores µs", "{:.1f}"),
    ("token_topk_us", "token top-k µs", "{:.1f}"),
    ("attention_us", "attention µs", "{:.1f}"),
    ("glue_us", "other ops µs", "{:.1f}"),
    ("operator_graph_us", "operator µs (graph)", "{:.1f}"),
    ("operator_eager_us", "operator µs (eager)", "{:.1f}"),
    ("speedup_graph", "speedup (graph)", "{:.1f}x"),
    ("speedup_eager", "speedup (eager)", "{:.1f}x"),
    ("block_scores_gbps", "block scores GB/s", "{:.0f}"),
    ("candidate_scores_gbps", "candidate scores GB/s", "{:.0f}"),
    ("attention_gbps", "attention GB/s", "{:.0f}"),
    ("operator_gbps", "operator GB/s", "{:.0f}"),
]
SUMMARY = ["model", "context", "batch", "budget", "dense_us", "operator_graph_us", "speedup_graph",
           "operator_eager_us", "speedup_eager", "attention_gbps", "operator_gbps"]


def markdown_table(rows: list[dict], keys: list[str]) -> str:
    columns = [column for column in COLUMNS if column[0] in keys]
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |")
    return "\n".join(lines)


def plot_speedups(rows: list[dict], path: Path) -> None:
    """ops_speedup.png: the operator's speedup over dense (graph replay) against the context, one panel per
    attention shape, one line per (batch, budget). Without matplotlib, says so and draws nothing."""
    try:
        import matplotlib
    except ImportError:
        print(f"matplotlib not installed: skipped {path.name}", file=sys.stderr)
        return
    matplotlib.use("Agg")
    from matplotlib import pyplot

    models = sorted({row["model"] for row in rows})
    figure, axes = pyplot.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        lines: dict[tuple[int, int], list[tuple[int, float]]] = {}
        for row in rows:
            if row["model"] == model:
                lines.setdefault((row["batch"], row["budget"]), []).append((row["context"], row["speedup_graph"]))
        for (batch, budget), points in sorted(lines.items()):
            points.sort()
            axis.plot([context // 1024 for context, _ in points], [speedup for _, speedup in points], marker="o",
                      linestyle="-" if budget == 1024 else ":", label=f"batch {batch}, budget {budget}")
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set(title=f"{model}: sparse operator vs dense decode", xlabel="context (k tokens)",
                 ylabel="speedup (CUDA-graph replay)")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.replot is not None:
        rows = json.loads(args.replot.read_text())["rows"]
        args.out.mkdir(parents=True, exist_ok=True)
        plot_speedups(rows, args.out / "ops_speedup.png")
        return 0
    if not torch.cuda.is_available():
        raise SystemExit("ops_bench needs a CUDA GPU (torch.cuda.is_available() is False)")
    import triton

    device = torch.device("cuda")
    torch.manual_seed(0)
    environment = {
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "dtype": str(DTYPE),
        "layer_config": LAYER_CONFIG,
        "warmup_ms": args.warmup_ms,
        "rep_ms": args.rep_ms,
    }
    print(json.dumps(environment))
    models = ["gqa", "mla"] if args.attention == "both" else [args.attention]
    rows, dense_alternatives = [], {}
    started = time.perf_counter()
    for model in models:
        shape = MODELS[model]
        for batch in args.batches:
            layer = build_layer(shape, batch, max(args.context_lengths), device)
            for context in args.context_lengths:
                dense_us, dense_impl, alternatives = time_dense(shape, batch, context, device, args)
                dense_alternatives[f"{model}/{context}/{batch}"] = alternatives
                dense_bytes = batch * shape.groups * context * shape.kv_bytes_per_token()
                for budget in args.budgets:
                    check = context == args.context_lengths[0] and budget == args.budgets[0]
                    sparse = time_sparse(shape, layer, batch, context, budget, check, args)
                    row = {
                        "model": model,
                        "context": context,
                        "batch": batch,
                        "budget": budget,
                        "dense_us": dense_us,
                        "dense_impl": dense_impl,
                        "dense_bytes": dense_bytes,
                        "dense_gbps": dense_bytes / dense_us / 1e3,
                        **sparse,
                        "speedup_graph": dense_us / sparse["operator_graph_us"],
                        "speedup_eager": dense_us / sparse["operator_eager_us"],
                    }
                    rows.append(row)
                    print(" ".join(f"{header}={fmt.format(row[key])}" for key, header, fmt in COLUMNS), flush=True)
            del layer
            torch.cuda.empty_cache()
    elapsed = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    result = {"environment": environment, "model_shapes": {name: asdict(MODELS[name]) for name in models},
              "rows": rows, "dense_alternatives_us": dense_alternatives, "elapsed_s": elapsed}
    (args.out / "ops_bench.json").write_text(json.dumps(result, indent=1))
    heading = (
        f"# Decode operator benchmark\n\n{environment['device']}, torch {environment['torch']}, "
        f"triton {environment['triton']}, {DTYPE}; times are medians.\n\n"
    )
    (args.out / "ops_bench.md").write_text(heading + markdown_table(rows, [key for key, _, _ in COLUMNS]) + "\n")
    plot_speedups(rows, args.out / "ops_speedup.png")
    print(f"\nsummary ({elapsed:.0f} s; full table in {args.out / 'ops_bench.md'}):")
    print(markdown_table(rows, SUMMARY))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
