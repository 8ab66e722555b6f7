"""Decode-step time of a whole model's attention with its KV cache resident on the GPU or offloaded to pinned host
memory (prefetch_lag 0 and 1 over blocks, or the selected tokens), in one run.

    asynctls-hf bench offload-decode [--attention gqa|mla] [--layers N] [--batch 2] [--context-lengths 48k,64k,96k]
        [--steps 64] [--warmup 8] [--drift 0.05] [--placements resident,lag0,lag1,tokens,tokens-lag1] [--dense-layer]
        [--copy-stream-priority 0] [--copy-programs 0] [--profile 0] [--out DIR] [AsyncTLS settings]

For each placement (resident, offloaded lag 0, offloaded lag 1, offloaded by tokens: offload_granularity "token",
the selected tokens a step lacks fetched before its attention (exact) or, tokens-lag1, for the next step) it builds
an AsyncTLSCache of `--layers` layers of the ops benchmark's shapes (gqa: the Qwen3-8B layer, 8 groups of
128 + 128, 36 layers by default; mla: the GLM-4.7-Flash layer, one 576-wide latent holding its values, 47 layers)
and fills it with the same random keys up to
each context length in turn. A decode step appends one token to every layer and runs its attention
(`asynctls_hf.attention.decode_attention`: block filtering, the offload engine's protocol, token selection, sparse
attention); on CUDA the step is replayed from a CUDA graph (as a patched model's decode step is; `--cuda-graph
false`: eager), captured after the warm-up steps at each context. Each layer's query drifts, q_t = normalize(q_{t-1}
+ drift * noise), so consecutive steps want overlapping blocks as a real model's do; the hit rate this gives is
reported beside the probe models' measured locality (EVAL.md). Per (placement, context): the median step time over
`--steps` steps after `--warmup` (CUDA events), the slowdown against resident, the hit rate, MB copied per step and
the H2D GB/s they amount to over the step, the time the compute stream waited on copies, and the peak GPU memory.
`--device cpu` runs the same steps at the sizes given, as a check that the benchmark runs.

The attention alone leaves little compute for the offloaded copies to overlap with (lag 1 starts them while the
later layers compute). `--dense-layer` (gqa) puts the Qwen3-8B layer's GEMMs around each layer's attention (the
q/k/v and output projections and the MLP, one set of random bf16 weights shared by the layers: 384 MB read per
layer, about the 4.8 ms of GEMMs a whole Qwen3-8B step spends): the compute a whole model gives the copies.
`--copy-stream-priority` and `--copy-programs` set the offload transport's copy stream priority (CUDA's convention:
-1 high, 0 default) and the copy kernel's grid cap (0: the package's, default_transport's), the two ways to share
the GPU between the copies and that compute. `--profile N` (CUDA) profiles N more steps of each (placement, context)
with torch.profiler and writes their kernels per step, both streams, by GPU time, to offload_decode_profile.md. A
profile slows every step the process times after it (about 0.3 µs a graph kernel, like a second stream's work:
BENCHMARKS.md, "The side stream"), so with --profile only the first cell's times are comparable; time without it.
Likewise a lag-1 placement's copy stream slows the cells timed after it: time exact and lag 1 in separate runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from asynctls_hf import attention
from asynctls_hf.bench import profile_step
from asynctls_hf.bench.offload_transfer_bench import markdown_table
from asynctls_hf.bench.ops_bench import MODELS
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.cache.cache import default_transport, side_copy_programs
from asynctls_hf.cli_options import add_config_arguments, config_from_args, integer_list
from asynctls_hf.graphs import StepGraph, capture_decode_step
from asynctls_hf.offload import CudaStreamTransport, Transport

DTYPE = torch.bfloat16
DEFAULT_LAYERS = {"gqa": 36, "mla": 47}
FILL_CHUNK = 8192
PLACEMENTS = {"resident": dict(offload=False), "offload lag 0": dict(offload=True, prefetch_lag=0),
              "offload lag 1": dict(offload=True, prefetch_lag=1),
              "offload tokens": dict(offload=True, prefetch_lag=0, offload_granularity="token"),
              "offload tokens lag 1": dict(offload=True, prefetch_lag=1, offload_granularity="token")}
PLACEMENT_CHOICES = {"resident": "resident", "lag0": "offload lag 0", "lag1": "offload lag 1",
                     "tokens": "offload tokens", "tokens-lag1": "offload tokens lag 1"}
# The Qwen3-8B layer's dense shapes (--dense-layer): hidden size, query and key/value projection widths, MLP width.
QWEN3_8B_DENSE = dict(hidden=4096, query=32 * 128, key_value=8 * 128, intermediate=12288)
COLUMNS = [
    ("placement", "placement", "{}"),
    ("context", "context", "{}"),
    ("step_ms", "step ms", "{:.2f}"),
    ("slowdown", "vs resident", "{:.2f}x"),
    ("hit_rate", "hit rate", "{:.3f}"),
    ("copied_mb", "MB copied per step", "{:.1f}"),
    ("h2d_gbps", "H2D GB/s over the step", "{:.1f}"),
    ("wait_ms", "copy wait ms per step", "{:.2f}"),
    ("peak_gib", "peak GPU GiB", "{:.1f}"),
    ("graphed", "graphed", "{}"),
]


class SyntheticDecode:
    """Random keys, values and drifting queries for `layers` layers of `shape`, the same for every placement."""

    def __init__(self, shape, layers: int, batch: int, drift: float, device: torch.device):
        self.shape, self.layers, self.batch, self.drift, self.device = shape, layers, batch, drift, device
        self.heads = shape.groups * shape.heads_per_group
        self.generator = torch.Generator(device).manual_seed(0)
        self.queries = [self._normalized(self._randn(batch, self.heads, 1, shape.key_width)) for _ in range(layers)]

    def _randn(self, *size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(size, generator=generator or self.generator, device=self.device, dtype=torch.float32)

    def _normalized(self, query: torch.Tensor) -> torch.Tensor:
        return query / query.norm(dim=-1, keepdim=True) * self.shape.key_width**0.5

    def chunk(self, layer: int, begin: int, end: int):
        """(query, keys, values) of slots [begin, end) of `layer`: the same tensors on every call."""
        generator = torch.Generator(self.device).manual_seed(layer * 1_000_003 + begin)
        shape = self.shape
        keys = self._randn(self.batch, shape.groups, end - begin, shape.key_width, generator=generator)
        values = None if shape.values_in_keys else self._randn(
            self.batch, shape.groups, end - begin, shape.value_width, generator=generator
        )
        query = self._randn(self.batch, self.heads, end - begin, shape.key_width, generator=generator)
        return query.to(DTYPE), keys.to(DTYPE), None if values is None else values.to(DTYPE)

    def step_inputs(self, layer: int):
        """(query [B, H, 1, Dk], keys [B, NG, 1, Dk], values) of one decode step; the query drifts."""
        shape = self.shape
        self.queries[layer] = self._normalized(
            self.queries[layer] + self.drift * self._randn(*self.queries[layer].shape)
        )
        keys = self._randn(self.batch, shape.groups, 1, shape.key_width).to(DTYPE)
        values = None if shape.values_in_keys else self._randn(self.batch, shape.groups, 1, shape.value_width)
        return self.queries[layer].to(DTYPE), keys, None if values is None else values.to(DTYPE)


class DenseLayerWork:
    """The Qwen3-8B layer's GEMMs around each layer's attention, on random bf16 weights shared by the layers: before
    the attention the q/k/v projection of the hidden state [B, hidden], after it the output projection of the
    attention's output [B, H * Dv] and the MLP (gate and up, SiLU, down), whose result is the next layer's hidden
    state. Timing load only: the attention's query, keys and values stay SyntheticDecode's."""

    def __init__(self, batch: int, device: torch.device):
        shape = QWEN3_8B_DENSE
        generator = torch.Generator(device).manual_seed(1)

        def weight(rows: int, columns: int) -> torch.Tensor:
            return (torch.randn(rows, columns, generator=generator, device=device) * rows**-0.5).to(DTYPE)

        self.qkv = weight(shape["hidden"], shape["query"] + 2 * shape["key_value"])
        self.output = weight(shape["query"], shape["hidden"])
        self.gate_up = weight(shape["hidden"], 2 * shape["intermediate"])
        self.down = weight(shape["intermediate"], shape["hidden"])
        self.hidden = torch.randn(batch, shape["hidden"], generator=generator, device=device).to(DTYPE)

    def before_attention(self) -> None:
        torch.mm(self.hidden, self.qkv)

    def after_attention(self, attention_output: torch.Tensor) -> None:
        """attention_output [B, H, 1, Dv] with H * Dv the query width."""
        gate, up = (attention_output.flatten(1) @ self.output @ self.gate_up).chunk(2, dim=-1)
        self.hidden.copy_((torch.nn.functional.silu(gate) * up) @ self.down)


def fill(cache: AsyncTLSCache, data: SyntheticDecode, end: int) -> None:
    """Append slots [current length, end) to every layer, in chunks."""
    for layer in range(data.layers):
        begin = cache.layers[layer].length
        for chunk_begin in range(begin, end, FILL_CHUNK):
            query, keys, values = data.chunk(layer, chunk_begin, min(chunk_begin + FILL_CHUNK, end))
            attention.append_tokens(cache, layer, query, keys, values)


class DecodeSteps:
    """Decode steps of every layer: eager, or replayed from a CUDA graph captured by capture() (the step reads its
    query, key and value from static buffers, refreshed with the next drifted inputs before each step)."""

    def __init__(self, cache: AsyncTLSCache, data: SyntheticDecode, dense: DenseLayerWork | None = None):
        self.cache, self.data, self.dense = cache, data, dense
        self.inputs = [data.step_inputs(layer) for layer in range(data.layers)]
        self.graph: StepGraph | None = None

    def _refresh(self) -> None:
        for layer, buffers in enumerate(self.inputs):
            for buffer, value in zip(buffers, self.data.step_inputs(layer), strict=True):
                if buffer is not None:
                    buffer.copy_(value)

    def _run(self) -> None:
        for layer, (query, keys, values) in enumerate(self.inputs):
            if self.dense is not None:
                self.dense.before_attention()
            attention.append_tokens(self.cache, layer, query, keys, values)
            output = attention.decode_attention(self.cache, layer, query, self.data.shape.scaling)
            if self.dense is not None:
                self.dense.after_attention(output)

    def capture(self) -> None:
        """Capture the step at the cache's current length (recapture after the cache is filled further)."""
        self.graph = capture_decode_step(self.cache, self._run)

    def timed(self, steps: int) -> list[float]:
        """Seconds of each of `steps` decode steps (CUDA events on the compute stream; wall time on the CPU),
        the inputs' refresh left out."""
        times = []
        for _ in range(steps):
            self._refresh()
            if self.data.device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                if self.graph is not None:
                    self.graph.replay(self.cache)
                else:
                    self._run()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1000)
            else:
                began = time.perf_counter()
                self._run()
                times.append(time.perf_counter() - began)
        return times


def profiled_kernels(steps: DecodeSteps, count: int) -> dict:
    """Kernels of `count` more steps under torch.profiler: {"kernels": [(name, launches per step, µs per step, idle
    µs before its launches per step)] by time, "kernels_per_step", "kernel_ms_per_step"} (both streams: kernel time
    may exceed the step's)."""
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profiler:
        steps.timed(count)
        torch.cuda.synchronize()
    kernels, per_step, micros = profile_step.kernel_table(profile_step.profiled_kernels(profiler), count)
    return {"kernels": kernels, "kernels_per_step": per_step, "kernel_ms_per_step": micros / 1e3}


def profile_report(rows: list[dict], top: int = 30) -> str:
    """The profiled rows' kernel tables as markdown."""
    sections = []
    for row in rows:
        profile = row["profile"]
        lines = [f"## {row['placement']}, context {row['context']}: step {row['step_ms']:.2f} ms (median, "
                 f"unprofiled), {profile['kernels_per_step']:.0f} kernels and {profile['kernel_ms_per_step']:.2f} ms "
                 "of kernel time per step", "", "| kernel | launches per step | µs per step | idle µs before it |",
                 "|---|---|---|---|"]
        lines += [f"| `{name[:90]}` | {launches:.1f} | {micros:.1f} | {idle:.1f} |" for name, launches, micros, idle
                  in profile["kernels"][:top]]
        sections.append("\n".join(lines))
    return "# Kernels per decode step\n\n" + "\n\n".join(sections) + "\n"


def transport_for(args, side_stream: bool, graph_only: bool, device: torch.device) -> Transport:
    """The offload transport on `device` with the copy stream priority and grid cap asked for (no cap asked: the
    package's, side_copy_programs for lag 1's copy stream); with a copy stream only where the placement has one
    (`side_stream`: lag 1), used only inside captured steps when `graph_only` (graphed), as the package's
    default_transport."""
    if device.type != "cuda":
        return default_transport(device)
    if not side_stream:
        return CudaStreamTransport(device, side_stream=False, copy_programs=args.copy_programs or None)
    return CudaStreamTransport(device, priority=args.copy_stream_priority,
                               copy_programs=args.copy_programs or side_copy_programs(device), graph_only=graph_only)


def measure_placement(name: str, args, config, device: torch.device) -> list[dict]:
    shape = MODELS[args.attention]
    layers = args.layers or DEFAULT_LAYERS[args.attention]
    max_length = max(args.context_lengths) + (args.warmup + args.steps) * len(args.context_lengths)
    placement_config = config.replace(**PLACEMENTS[name])
    cache = AsyncTLSCache(
        [shape.geometry] * layers, placement_config, max_length=max_length,
        transport_factory=functools.partial(transport_for, args, placement_config.prefetch_lag > 0, config.cuda_graph),
    )
    cache.plan_placement(args.batch, DTYPE, [device] * layers)
    cache.observe_attention_mask(None, args.batch, 1, device)
    data = SyntheticDecode(shape, layers, args.batch, args.drift, device)
    steps = DecodeSteps(cache, data, DenseLayerWork(args.batch, device) if args.dense_layer else None)
    graphed = device.type == "cuda" and config.cuda_graph
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rows = []
    for context in args.context_lengths:
        fill(cache, data, context)
        steps.graph = None
        steps.timed(args.warmup)
        if graphed:
            steps.capture()
        cache.reset_stats()
        times = steps.timed(args.steps)
        stats = cache.stats()
        step_s = statistics.median(times)
        copied = stats["h2d_bytes"] / args.steps
        rows.append({
            "placement": name, "context": context, "step_ms": step_s * 1e3, "hit_rate": stats["hit_rate"],
            "copied_mb": copied / 1e6, "h2d_gbps": copied / step_s / 1e9,
            "wait_ms": stats["copy_wait_seconds"] / args.steps * 1e3,
            "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0,
            "host_gib": stats["host_memory_bytes"] / 2**30, "graphed": graphed,
        })
        print(" ".join(f"{header}={fmt.format(rows[-1][key])}" for key, header, fmt in COLUMNS if key in rows[-1]),
              flush=True)
        if args.profile and device.type == "cuda":
            rows[-1]["profile"] = profiled_kernels(steps, args.profile)
    del steps, cache
    gc.collect()  # the captured graph and the cache refer to each other: free this placement's store before the next
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="asynctls-hf bench offload-decode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attention", choices=("gqa", "mla"), default="gqa",
                        help="gqa: Qwen3-8B layers (default); mla: GLM-4.7-Flash layers")
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default: 36 gqa, 47 mla)")
    parser.add_argument("--batch", type=int, default=2, help="sequences (default: 2)")
    parser.add_argument("--context-lengths", type=integer_list, default=[49152, 65536, 98304],
                        help="context lengths, filled in turn; k = 1024 (default: 48k,64k,96k)")
    parser.add_argument("--steps", type=int, default=64, help="timed decode steps per cell (default: 64)")
    parser.add_argument("--warmup", type=int, default=8, help="decode steps before timing (default: 8)")
    parser.add_argument("--drift", type=float, default=0.05,
                        help="query drift per step (noise scale before normalizing; default: 0.05)")
    parser.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a check that it runs)")
    parser.add_argument("--out", type=Path, default=Path("offload_decode_results"),
                        help="folder for offload_decode.json and offload_decode.md")
    parser.add_argument("--placements", type=placement_list, default=list(PLACEMENTS),
                        help="comma-separated, of resident, lag0, lag1, tokens, tokens-lag1 (default: all)")
    parser.add_argument("--dense-layer", action="store_true",
                        help="run the Qwen3-8B layer's projections and MLP around each layer's attention (gqa)")
    parser.add_argument("--copy-stream-priority", type=int, default=0,
                        help="priority of the offload copy stream of lag-1 placements (exact ones have none): 0 "
                             "default, -1 high (CUDA: lower is higher)")
    parser.add_argument("--copy-programs", type=int, default=0,
                        help="cap on each copy launch's programs (0: the package's, a fifth of the SMs for lag 1's "
                             "copy stream, uncapped for exact copies)")
    parser.add_argument("--profile", type=int, default=0,
                        help="CUDA: profile this many more steps per cell (offload_decode_profile.md; default: 0); "
                             "it slows the cells timed after it")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    if args.dense_layer and args.attention != "gqa":
        parser.error("--dense-layer models the Qwen3-8B layer's dense GEMMs: use it with --attention gqa")
    if args.copy_programs < 0:
        parser.error(f"--copy-programs must be 0 (the package's cap) or positive, got {args.copy_programs}")
    if args.profile < 0:
        parser.error(f"--profile is a number of steps, 0 (none) or more, got {args.profile}")
    return args


def placement_list(text: str) -> list[str]:
    """'resident,lag1' -> the PLACEMENTS names, in PLACEMENTS' order."""
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = names - set(PLACEMENT_CHOICES)
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"placements must be a comma-separated list of {', '.join(PLACEMENT_CHOICES)}, got {text!r}"
        )
    return [PLACEMENT_CHOICES[name] for name in PLACEMENT_CHOICES if name in names]


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("the offload decode benchmark needs a CUDA GPU; pass --device cpu for a check run")
    config = config_from_args(args)
    environment = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "dtype": str(DTYPE), "attention": args.attention,
        "layers": args.layers or DEFAULT_LAYERS[args.attention], "batch": args.batch, "drift": args.drift,
        "steps": args.steps, "warmup": args.warmup, "config": dataclasses.asdict(config),
        "dense_layer": args.dense_layer, "copy_stream_priority": args.copy_stream_priority,
        "copy_programs": args.copy_programs, "profile_steps": args.profile,
    }
    rows = []
    for name in args.placements:
        rows += measure_placement(name, args, config, device)
    resident = {row["context"]: row["step_ms"] for row in rows if row["placement"] == "resident"}
    for row in rows:
        if row["context"] in resident:
            row["slowdown"] = row["step_ms"] / resident[row["context"]]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "offload_decode.json").write_text(json.dumps({"environment": environment, "rows": rows}, indent=1))
    heading = (
        f"# Offloaded decode steps\n\n{environment['device']}, torch {environment['torch']}, {DTYPE}, "
        f"{environment['layers']} {args.attention} layers, batch {args.batch}, query drift {args.drift}"
        f"{', with the Qwen3-8B dense GEMMs per layer' if args.dense_layer else ''}, copy stream priority "
        f"{args.copy_stream_priority}, copy programs {args.copy_programs or 'uncapped'}.\n\n"
    )
    columns = [column for column in COLUMNS if all(column[0] in row for row in rows)]  # no resident: no slowdown
    (args.out / "offload_decode.md").write_text(heading + markdown_table(rows, columns) + "\n")
    if any("profile" in row for row in rows):
        (args.out / "offload_decode_profile.md").write_text(profile_report([row for row in rows if "profile" in row]))
    print(markdown_table(rows, columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
