"""Which part of the offloaded decode step widens the gap before every one of its kernels.

The step timelines (benchmarks/2026-11-30_step_gaps_h200/) show every kernel of the graphed Qwen3-8B step at 96k,
batch 1, starting 0.42 us after the one before when the cache is offloaded (exact or lag 1) and 0.10 us when it is
resident, from the step's first kernel on, and the resident step's kernels partly overlapping (none offloaded).
Microbenchmark graphs of tiny kernels sit at 0.26 us whatever they hold, so the question needs the real step. In
one process and with one model, this captures and times the resident step, the resident step with extra work put
into every layer by a forward pre-hook (tiny kernels, so the graph holds as many kernels as the offloaded one; an
offload engine's exact token fetch on a 96k-token store, the offloaded step's own kernels; its plan alone), the
offloaded exact step, and the resident step again (whether the offloaded one leaves the process changed). Per
variant: the median unprofiled step time, and over two profiled steps the kernels per step, the median gap
between consecutive kernels and how many kernels start before the previous one ends.

    PYTHONPATH=. python benchmarks/scripts/step_gap_bisect_h200.py --out DIR
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForCausalLM

import asynctls_hf
from asynctls_hf.bench.decode_step_bench import (
    ASYNCTLS_SETTINGS,
    DTYPE,
    SmoothedQueries,
    filled_asynctls_cache,
    time_forward_steps,
)
from asynctls_hf.bench.generate_bench import model_config
from asynctls_hf.bench.profile_step import profiled_timeline
from asynctls_hf.config import AsyncTLSConfig
from benchmarks.scripts.graph_gaps_engine_h200 import engines_for

CONTEXT, BATCH, WARMUP, STEPS, PROFILED = 98304, 1, 4, 12, 2


def step_gaps(timeline) -> dict:
    """Of the longest run of kernels without a 20 µs pause (one step's graph): kernels, their summed time (ms), the
    median and mean gap between consecutive ones (µs), how many start before the previous one ends, and the median
    time of its RMS-norm rsqrt kernels (µs: whether the kernels themselves slowed)."""
    runs, current = [], []
    for entry in timeline:
        if current and entry[1] - current[-1][2] > 20.0:
            runs.append(current)
            current = []
        current.append(entry)
    runs.append(current)
    step = max(runs, key=len)
    gaps = [b[1] - a[2] for a, b in zip(step, step[1:], strict=False)]
    rsqrt = [end - start for name, start, end, _ in step if "rsqrt" in name]
    return {"kernels": len(step), "kernel_ms": sum(end - start for _, start, end, _ in step) / 1e3,
            "median_gap_us": statistics.median(gaps), "mean_gap_us": statistics.mean(gaps),
            "overlaps": sum(gap < -0.01 for gap in gaps), "rsqrt_us": statistics.median(rsqrt) if rsqrt else 0.0}


def measure(model, method: str, extra=None, keep: bool = False) -> tuple[dict, object]:
    """Fill a cache of `method` (a bench decode-step AsyncTLS method) at CONTEXT, run WARMUP steps (the eager step
    and the capture), time STEPS unprofiled and profile PROFILED more; extra(layer index), when given, runs at the
    start of every decoder layer (a forward pre-hook). Returns (row, the cache when `keep`, else None: freed)."""
    device = next(model.parameters()).device
    handles = []
    if extra is not None:
        for index, layer in enumerate(model.model.layers):
            handles.append(layer.register_forward_pre_hook(functools.partial(run_extra, extra, index)))
    cache = None
    try:
        with torch.no_grad(), SmoothedQueries(model, 0.05), \
                asynctls_hf.patched(model, AsyncTLSConfig().replace(**ASYNCTLS_SETTINGS[method])):
            cache = filled_asynctls_cache(model, BATCH, CONTEXT, CONTEXT + WARMUP + STEPS + PROFILED + 1, device)
            times = time_forward_steps(model, cache, BATCH, CONTEXT, WARMUP, STEPS)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as profiler:
                time_forward_steps(model, cache, BATCH, CONTEXT + WARMUP + STEPS, 0, PROFILED)
                torch.cuda.synchronize()
            row = {"step_ms": statistics.median(times) * 1e3, "replays": cache.graph_replays,
                   **step_gaps(profiled_timeline(profiler))}
    finally:
        for handle in handles:
            handle.remove()
        if not keep:
            cache = None
            gc.collect()
            torch.cuda.empty_cache()
    return row, cache


def report(name: str, row: dict) -> None:
    print(f"{name:58s} " + " ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                                    for key, value in row.items()), flush=True)


def run_extra(extra, index: int, module, inputs) -> None:
    """A forward pre-hook: extra(layer index)."""
    extra(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    with device:
        model = AutoModelForCausalLM.from_config(model_config("qwen3-8b", CONTEXT + 1024), dtype=DTYPE).eval()
    engines, positions, valid = engines_for(device)
    selected = positions[..., 128:].contiguous()
    tiny = torch.zeros(4096, device=device)

    def tiny_kernels(count: int):
        def extra(layer: int) -> None:
            for _ in range(count):
                tiny.add_(1.0)
        return extra

    variants = [
        ("resident", "graphed", None),
        ("resident, 6 tiny kernels more per layer", "graphed", tiny_kernels(6)),
        ("resident, 12 tiny kernels more per layer", "graphed", tiny_kernels(12)),
        ("resident, an exact token fetch per layer (pinned store)", "graphed",
         lambda layer: engines[layer % 4].fetch_tokens(positions, valid, fixed=128)),
        ("resident, the circular plan per layer", "graphed",
         lambda layer: engines[layer % 4].resident.plan(selected, engines[layer % 4]._store_units, row_tokens=1)),
        ("offloaded exact (graphed-offload-token)", "graphed-offload-token", None),
        ("resident again", "graphed", None),
    ]
    results = {}
    for name, method, extra in variants:
        row, _ = measure(model, method, extra)
        results[name] = row
        report(name, row)
    (args.out / "step_gap_bisect.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "context": CONTEXT, "batch": BATCH,
         "query_smoothing": 0.05, "results": results}, indent=1))


if __name__ == "__main__":
    main()
