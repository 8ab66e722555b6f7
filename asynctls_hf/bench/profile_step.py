"""Where a whole model's decode step spends its GPU time: every kernel of one step, grouped by name.

    asynctls-hf bench profile-step [--model qwen3-8b|glm-4.7-flash] [--context 98304] [--batch 1]
        [--method graphed|eager|stock] [--steps 10] [AsyncTLS settings]

Fills a cache as `bench decode-step` does (random weights and contents, bf16), runs a few warm-up steps (graphed:
the eager step and the capture), then profiles `--steps` steps with torch.profiler (CUDA activity; the kernels of a
replayed graph are recorded one by one) and prints, per kernel name, its launches and GPU time per step, the
kernel count and kernel time per step, and the step's wall time. Kernel time below the step's time is the gap
between kernels (launches, host synchronization).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

import asynctls_hf
from asynctls_hf.bench.decode_step_bench import (
    ASYNCTLS_SETTINGS,
    DTYPE,
    filled_asynctls_cache,
    filled_stock_cache,
    time_forward_steps,
)
from asynctls_hf.bench.generate_bench import model_config
from asynctls_hf.cli_options import add_config_arguments, config_from_args

WARMUP_STEPS = 4


def kernel_table(profiler, steps: int) -> tuple[list[tuple[str, float, float]], float, float]:
    """(rows of (kernel name, launches per step, µs per step) by time, kernels per step, kernel µs per step)."""
    by_name: dict[str, list[float]] = {}
    for event in profiler.events():
        if event.device_type.name == "CUDA" and not event.name.startswith(("Memcpy", "Memset")):
            by_name.setdefault(event.name, []).append(event.device_time)
    rows = sorted(((name, len(times) / steps, sum(times) / steps) for name, times in by_name.items()),
                  key=lambda row: -row[2])
    return rows, sum(row[1] for row in rows), sum(row[2] for row in rows)


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
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("the step profile needs a CUDA GPU")
    from transformers import AutoModelForCausalLM

    device = torch.device("cuda")
    with device:
        model = AutoModelForCausalLM.from_config(model_config(args.model, args.context + 1024), dtype=DTYPE).eval()
    config = config_from_args(args)
    with torch.no_grad():
        if args.method == "stock":
            cache = filled_stock_cache(model, args.batch, args.context, device)
            step_times, profiler = profiled_steps(model, cache, args)
        else:
            with asynctls_hf.patched(model, config.replace(**ASYNCTLS_SETTINGS[args.method])):
                max_length = args.context + 2 * (WARMUP_STEPS + args.steps) + 1
                cache = filled_asynctls_cache(model, args.batch, args.context, max_length, device)
                step_times, profiler = profiled_steps(model, cache, args)
    rows, kernels, kernel_us = kernel_table(profiler, args.steps)
    print(f"{args.model} {args.method} context {args.context} batch {args.batch}")
    print(f"{'kernel':100s} {'per step':>8s} {'µs/step':>9s}")
    for name, launches, micros in rows[: args.top]:
        print(f"{name[:100]:100s} {launches:8.1f} {micros:9.1f}")
    step_ms = statistics.median(step_times) * 1e3
    print(f"kernels per step: {kernels:.0f}; kernel time per step {kernel_us / 1e3:.2f} ms; "
          f"step wall time (median, unprofiled) {step_ms:.2f} ms")
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
