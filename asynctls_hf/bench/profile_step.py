"""Where a whole model's decode step spends its GPU time: every kernel of one step, grouped by name.

    asynctls-hf bench profile-step [--model qwen3-8b|glm-4.7-flash] [--context 98304] [--batch 1]
        [--method graphed|eager|stock] [--steps 10] [--query-smoothing 0.05] [AsyncTLS settings]

Fills a cache as `bench decode-step` does (random weights and contents, bf16), runs a few warm-up steps (graphed:
the eager step and the capture), then profiles `--steps` steps with torch.profiler (CUDA activity; the kernels of a
replayed graph are recorded one by one) and prints, per kernel name (device copies and fills, which a graph
replays as nodes of their own, included), its launches and GPU time per step and the GPU's idle time just before
its launches (nothing running on any stream: a launch waiting on the one before it, or on the host), the kernel
count and kernel time per step, and the step's wall time. `--query-smoothing` as in `bench decode-step` (a trained
model's hit rate for an offloaded cache). `--timeline FILE` writes every profiled kernel as a CSV line (name, start
µs, end µs, stream), for comparing two steps' timelines. When kernels ran on more than one stream (lag 1's copies),
a table per stream follows: its launches and busy time per step, and how much of that another stream was busy too
(whether the copies ran beside the compute or after it).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

import asynctls_hf
from asynctls_hf.bench.decode_step_bench import (
    ASYNCTLS_SETTINGS,
    DTYPE,
    SmoothedQueries,
    filled_asynctls_cache,
    filled_stock_cache,
    time_forward_steps,
)
from asynctls_hf.bench.generate_bench import model_config
from asynctls_hf.cli_options import add_config_arguments, config_from_args

WARMUP_STEPS = 4


def kernel_table(kernels: list[tuple[str, float, float]], steps: int) -> tuple[list[tuple[str, float, float, float]],
                                                                             float, float]:
    """kernels: (name, start µs, end µs) of every kernel profiled. Returns (rows of (kernel name, launches per step,
    µs per step, idle µs before its launches per step) by time, kernels per step, kernel µs per step). The idle time
    before a launch is the time since the last kernel (of any stream) ended, when none was running."""
    by_name: dict[str, list[float]] = {}
    idle_before: dict[str, float] = {}
    busy_until = None
    for name, start, end in sorted(kernels, key=lambda kernel: kernel[1]):
        by_name.setdefault(name, []).append(end - start)
        idle = 0.0 if busy_until is None else max(0.0, start - busy_until)
        idle_before[name] = idle_before.get(name, 0.0) + idle
        busy_until = end if busy_until is None else max(busy_until, end)
    rows = sorted(((name, len(times) / steps, sum(times) / steps, idle_before[name] / steps)
                   for name, times in by_name.items()), key=lambda row: -row[2])
    return rows, sum(row[1] for row in rows), sum(row[2] for row in rows)


def busy_intervals(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start, end) intervals -> their union as disjoint (start, end) intervals, by start."""
    union: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if union and start <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], end))
        else:
            union.append((start, end))
    return union


def overlap_us(first: list[tuple[float, float]], second: list[tuple[float, float]]) -> float:
    """Time two unions of disjoint intervals (busy_intervals) share, in their unit."""
    shared, i, j = 0.0, 0, 0
    while i < len(first) and j < len(second):
        shared += max(0.0, min(first[i][1], second[j][1]) - max(first[i][0], second[j][0]))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return shared


def stream_table(timeline: list[tuple[str, float, float, int]], steps: int) -> list[tuple[int, float, float, float]]:
    """timeline: (name, start µs, end µs, stream) of every kernel profiled. Returns per stream, most launches first,
    (stream, launches per step, busy µs per step, µs per step of that during which another stream was busy too);
    busy time counts overlapping kernels of the stream once."""
    by_stream: dict[int, list[tuple[float, float]]] = {}
    for _, start, end, stream in timeline:
        by_stream.setdefault(stream, []).append((start, end))
    unions = {stream: busy_intervals(intervals) for stream, intervals in by_stream.items()}
    rows = []
    for stream, union in unions.items():
        others = busy_intervals([interval for other, intervals in unions.items() if other != stream
                                 for interval in intervals])
        rows.append((stream, len(by_stream[stream]) / steps, sum(end - start for start, end in union) / steps,
                     overlap_us(union, others) / steps))
    return sorted(rows, key=lambda row: -row[1])


def profiled_kernels(profiler) -> list[tuple[str, float, float]]:
    """(name, start µs, end µs) of the CUDA kernels, copies and fills a torch.profiler recorded."""
    return [(name, start, end) for name, start, end, _ in profiled_timeline(profiler)]


def profiled_timeline(profiler) -> list[tuple[str, float, float, int]]:
    """(name, start µs, end µs, stream) of the CUDA kernels, copies and fills a torch.profiler recorded, by start."""
    return sorted(((event.name, event.time_range.start, event.time_range.end, event.device_resource_id)
                   for event in profiler.events() if event.device_type.name == "CUDA"), key=lambda op: op[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="asynctls-hf bench profile-step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("qwen3-8b", "glm-4.7-flash"), default="qwen3-8b")
    parser.add_argument("--context", type=int, default=98304, help="cached tokens (default: 98304)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
    parser.add_argument("--method", choices=("stock", *ASYNCTLS_SETTINGS), default="graphed",
                        help="stock (unpatched) or an AsyncTLS method of bench decode-step (default: graphed)")
    parser.add_argument("--steps", type=int, default=10, help="profiled steps (default: 10)")
    parser.add_argument("--top", type=int, default=40, help="kernel names printed (default: 40)")
    parser.add_argument("--timeline", help="write every profiled kernel to this CSV file: name, start µs, end µs, "
                                           "stream")
    parser.add_argument("--query-smoothing", type=float, default=1.0,
                        help="as in bench decode-step: each query is this share of the new projection plus the rest "
                             "of the previous query (default: 1, off)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    if not 0.0 < args.query_smoothing <= 1.0:
        parser.error(f"--query-smoothing is a share in (0, 1], got {args.query_smoothing}")
    if not torch.cuda.is_available():
        raise SystemExit("the step profile needs a CUDA GPU")
    from transformers import AutoModelForCausalLM

    device = torch.device("cuda")
    with device:
        model = AutoModelForCausalLM.from_config(model_config(args.model, args.context + 1024), dtype=DTYPE).eval()
    config = config_from_args(args)
    with torch.no_grad(), SmoothedQueries(model, args.query_smoothing):
        if args.method == "stock":
            cache = filled_stock_cache(model, args.batch, args.context, device)
            step_times, profiler = profiled_steps(model, cache, args)
        else:
            with asynctls_hf.patched(model, config.replace(**ASYNCTLS_SETTINGS[args.method])):
                max_length = args.context + 2 * (WARMUP_STEPS + args.steps) + 1
                cache = filled_asynctls_cache(model, args.batch, args.context, max_length, device)
                step_times, profiler = profiled_steps(model, cache, args)
    timeline = profiled_timeline(profiler)
    rows, kernels, kernel_us = kernel_table([(name, start, end) for name, start, end, _ in timeline], args.steps)
    if args.timeline:
        with open(args.timeline, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(("name", "start_us", "end_us", "stream"))
            writer.writerows(timeline)
    print(f"{args.model} {args.method} context {args.context} batch {args.batch} "
          f"query smoothing {args.query_smoothing}")
    print(f"{'kernel':100s} {'per step':>8s} {'µs/step':>9s} {'idle before':>11s}")
    for name, launches, micros, idle in rows[: args.top]:
        print(f"{name[:100]:100s} {launches:8.1f} {micros:9.1f} {idle:11.1f}")
    step_ms = statistics.median(step_times) * 1e3
    idle_ms = sum(row[3] for row in rows) / 1e3
    print(f"kernels per step: {kernels:.0f}; kernel time per step {kernel_us / 1e3:.2f} ms; idle between kernels "
          f"{idle_ms:.2f} ms; step wall time (median, unprofiled) {step_ms:.2f} ms")
    streams = stream_table(timeline, args.steps)
    if len(streams) > 1:
        print(f"{'stream':>8s} {'launches/step':>14s} {'busy µs/step':>13s} {'beside another stream µs/step':>30s}")
        for stream, launches, busy, beside in streams:
            print(f"{stream:8d} {launches:14.1f} {busy:13.1f} {beside:30.1f}")
    return 0


def profiled_steps(model, cache, args) -> tuple[list[float], profile]:
    """Unprofiled timed steps (after the warm-up), then args.steps profiled ones at the following positions."""
    step_times = time_forward_steps(model, cache, args.batch, args.context, WARMUP_STEPS, args.steps)
    torch.cuda.synchronize()
    time.sleep(0.1)
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        time_forward_steps(model, cache, args.batch, args.context + WARMUP_STEPS + args.steps, 0, args.steps)
        torch.cuda.synchronize()
    return step_times, profiler


if __name__ == "__main__":
    raise SystemExit(main())
