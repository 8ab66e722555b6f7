"""Where the sparse decode operator's GPU time goes: every kernel of one step, with its GPU time.

    asynctls-hf bench profile-ops --attention gqa --context 98304 --batch 4 --budget 1024

Runs the operator (attention.select_tokens + ops.sparse_attention) eagerly under torch.profiler and prints the
kernels of one step with their median GPU time, their count and their sum, next to the step's time replayed from
a CUDA graph: the difference between the two is the gap between kernels.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from asynctls_hf import ops
from asynctls_hf.attention import select_tokens
from asynctls_hf.bench.ops_bench import DTYPE, LAYER_CONFIG, MODELS, build_layer, capture_graph, gpu_time_us
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.config import AsyncTLSConfig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attention", choices=sorted(MODELS), default="gqa",
                        help="gqa: the Qwen3-8B shape; mla: the GLM-4.7-Flash shape (default: gqa)")
    parser.add_argument("--context", type=int, default=98304, help="cached tokens (default: 98304)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default: 4)")
    parser.add_argument("--budget", type=int, default=1024, help="token budget (default: 1024)")
    parser.add_argument("--steps", type=int, default=20, help="profiled steps")
    args = parser.parse_args(argv)

    device = torch.device("cuda")
    shape = MODELS[args.attention]
    layer = build_layer(shape, args.batch, args.context, device)
    config = AsyncTLSConfig(**LAYER_CONFIG, token_budget=args.budget)
    plan_cache = AsyncTLSCache([shape.geometry], config)
    plan_cache.observe_attention_mask(None, args.batch, 1, device)
    plan = plan_cache.decode_plan(args.context, device)
    query = torch.randn(args.batch, shape.groups, shape.heads_per_group, shape.key_width, dtype=DTYPE, device=device)

    def operator():
        slots, valid = select_tokens(query, layer, plan, config, scaling=shape.scaling)
        return ops.sparse_attention(query, layer.keys, layer.values, slots, valid, shape.scaling, backend="triton")

    graph = capture_graph(operator)
    graph_us = gpu_time_us(graph.replay, 10.0, 40.0)
    for _ in range(3):
        operator()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        for _ in range(args.steps):
            operator()
        torch.cuda.synchronize()
    kernels = [event for event in profiler.events() if event.device_type.name == "CUDA"]
    by_name: dict[str, list[float]] = {}
    for event in kernels:
        by_name.setdefault(event.name, []).append(event.device_time)
    print(f"{args.attention} context {args.context} batch {args.batch} budget {args.budget}")
    print(f"{'kernel':90s} {'per step':>8s} {'median µs':>10s} {'sum µs/step':>12s}")
    total = 0.0
    for name, times in sorted(by_name.items(), key=lambda item: -sum(item[1])):
        per_step = len(times) / args.steps
        median = sorted(times)[len(times) // 2]
        step_sum = sum(times) / args.steps
        total += step_sum
        print(f"{name[:90]:90s} {per_step:8.1f} {median:10.1f} {step_sum:12.1f}")
    print(f"kernels per step: {len(kernels) / args.steps:.1f}; kernel time per step {total:.1f} µs; "
          f"graph replay {graph_us:.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
