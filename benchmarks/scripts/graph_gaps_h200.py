"""Why every kernel of the offloaded decode step starts 0.42 us after the one before (0.10 us resident).

The step timelines (benchmarks/2026-11-30_step_gaps_h200/timelines/) show the gap between consecutive kernels of the
graphed Qwen3-8B step four times wider offloaded than resident, in exact mode and with lag 1 alike: about 1 ms of
a 96k batch-1 step. Candidates: pinned host memory existing at all, a graph holding a kernel that reads pinned host
memory, or one that writes it, how much pinned or registered memory the process maps (the offloaded step's store
is 14 GB at 96k batch 1), or how many kernels the graph holds (the offloaded one 3042, the resident one 2822). This
replays a graph of 36 "layers" of 75 tiny kernels, with each variant, profiles two replays and prints the median gap
between consecutive kernels (torch.profiler), and the replay's CUDA-event time. Every variant measured the same
gap, 0.256 us (benchmarks/2026-11-30_step_gaps_h200/graph_gaps/).

    PYTHONPATH=. python benchmarks/scripts/graph_gaps_h200.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from asynctls_hf import ops
from asynctls_hf.bench.ops_bench import capture_graph

LAYERS, KERNELS_PER_LAYER, ROW_WIDTH, STORE_ROWS = 36, 75, 256, 98304


def replay_us(graph: torch.cuda.CUDAGraph, replays: int = 30, warmup: int = 0) -> float:
    """Median CUDA-event time of one replay of `graph` over `replays` after `warmup` more, in microseconds."""
    for _ in range(warmup):
        graph.replay()
    times = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000.0)
    return statistics.median(times)


def gaps_and_time(graph: torch.cuda.CUDAGraph) -> tuple[float, float]:
    """(median µs between one kernel's end and the next one's start over two profiled replays, median µs of a
    replay by CUDA events over 30)."""
    for _ in range(5):
        graph.replay()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        for _ in range(2):
            graph.replay()
        torch.cuda.synchronize()
    spans = sorted((event.time_range.start, event.time_range.end) for event in profiler.events()
                   if event.device_type.name == "CUDA")
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False) if b[0] - a[1] < 5.0]
    return statistics.median(gaps), replay_us(graph)


def tiny_tensors(device: torch.device) -> list[torch.Tensor]:
    """The four small tensors decode_like_step's kernels add to one another."""
    return [torch.randn(4096, device=device) for _ in range(4)]


def decode_like_step(tiny: list[torch.Tensor], extra: Callable[[int], None] | None = None) -> None:
    """LAYERS "layers" of KERNELS_PER_LAYER tiny dependent kernels each, then extra(layer) if given."""
    for layer in range(LAYERS):
        for kernel in range(KERNELS_PER_LAYER):
            tiny[kernel % 4].add_(tiny[(kernel + 1) % 4], alpha=1e-6)
        if extra is not None:
            extra(layer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pinned-gb", type=lambda text: [int(part) for part in text.split(",")], default=[2, 6, 8],
                        help="pinned allocations made one after another at the end, GiB each (default: 2,6,8)")
    parser.add_argument("--registered-gb", type=lambda text: [int(part) for part in text.split(",")],
                        default=[1, 3, 12], help="host memory registered with CUDA as the offload store is, GiB "
                        "each, one after another (default: 1,3,12)")
    parser.add_argument("--graph-sizes", type=lambda text: [int(part) for part in text.split(",")],
                        default=[1000, 2800, 3000, 3200, 4000, 6000],
                        help="kernels in the last graphs, one graph per number")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    tiny = tiny_tensors(device)
    buffer = torch.zeros(8192, ROW_WIDTH, device=device, dtype=torch.bfloat16)
    rows = torch.arange(8, device=device)
    valid = torch.ones(8, dtype=torch.bool, device=device)

    def step(extra=None) -> None:
        decode_like_step(tiny, None if extra is None else lambda layer: extra())

    results = {}

    def measure(name: str, graph: torch.cuda.CUDAGraph) -> None:
        gap, micros = gaps_and_time(graph)
        results[name] = {"median_gap_us": gap, "replay_us": micros}
        print(f"{name:70s} median gap {gap:6.3f} us  replay {micros:8.1f} us", flush=True)

    plain = capture_graph(step)
    measure("no pinned memory in the process", plain)
    device_store = torch.zeros(STORE_ROWS, ROW_WIDTH, device=device, dtype=torch.bfloat16)
    measure("device to device copy per layer", capture_graph(lambda: step(lambda: ops.copy_rows(
        device_store, buffer, rows, rows + 99, valid, backend="triton"))))
    host_store = torch.zeros(STORE_ROWS, ROW_WIDTH, dtype=torch.bfloat16).pin_memory()
    measure("pinned memory allocated, the graph captured before", plain)
    measure("pinned memory allocated, the graph captured after", capture_graph(step))
    measure("a kernel reading pinned memory per layer", capture_graph(lambda: step(lambda: ops.copy_rows(
        host_store, buffer, rows, rows + 99, valid, backend="triton"))))
    measure("a kernel writing pinned memory per layer", capture_graph(lambda: step(lambda: ops.copy_rows(
        buffer, host_store, rows, rows + 99, valid, backend="triton"))))
    measure("the first graph again", plain)
    reads_once = capture_graph(lambda: (step(), ops.copy_rows(host_store, buffer, rows, rows + 99, valid,
                                                               backend="triton")))
    measure("one kernel reading pinned memory at the end", reads_once)
    writes_once = capture_graph(lambda: (ops.copy_rows(buffer, host_store, rows, rows + 99, valid, backend="triton"),
                                         step()))
    measure("one kernel writing pinned memory at the start", writes_once)
    held = []
    for gigabytes in args.pinned_gb:
        held.append(torch.empty(gigabytes << 30, dtype=torch.uint8).pin_memory())
        measure(f"{sum(t.numel() for t in held) >> 30} GiB of pinned memory more, the first graph", plain)
        measure(f"{sum(t.numel() for t in held) >> 30} GiB of pinned memory more, a graph captured after",
                capture_graph(step))
    del held
    from asynctls_hf.offload.pinned import page_locked_empty

    registered = []
    for gigabytes in args.registered_gb:
        registered.append(page_locked_empty((gigabytes << 30,), torch.uint8))
        measure(f"{sum(t.numel() for t in registered) >> 30} GiB registered (cudaHostRegister), the first graph",
                plain)
        measure(f"{sum(t.numel() for t in registered) >> 30} GiB registered, a graph captured after",
                capture_graph(step))
    del registered
    large = [torch.randn(1 << 20, device=device) for _ in range(4)]
    for kernels in args.graph_sizes:
        def chain(kernels=kernels) -> None:
            for kernel in range(kernels):
                large[kernel % 4].add_(large[(kernel + 1) % 4], alpha=1e-6)
        measure(f"{kernels} kernels over 1M elements each", capture_graph(chain))
    (args.out / "graph_gaps.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    main()
