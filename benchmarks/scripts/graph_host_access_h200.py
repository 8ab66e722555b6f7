"""Does a kernel that reads or writes pinned host memory slow the rest of a CUDA graph down?

The offloaded exact decode step (Qwen3-8B, 96k, batch 1) costs 2.4 ms more than the resident one, of which its extra
kernels take 1.05 ms; in its profile every kernel of the step, not only the offload's, waits about 0.35 us longer
after the one before. This replays graphs shaped like a decode step, 36 "layers" of 75 tiny kernels each, alone and
with one extra ops.copy_rows launch per layer: device to device (the control), device to pinned host (a new token
written to the store: 8 rows of 512 bytes), pinned host to device (a step's misses: 1024 random rows of 512 bytes,
or 8). The extra launches alone, replayed from their own graph, give what they cost by themselves. Median of CUDA-event
times of the replays after warm-up.

    PYTHONPATH=. python benchmarks/scripts/graph_host_access_h200.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from asynctls_hf import ops
from asynctls_hf.bench.ops_bench import capture_graph
from benchmarks.scripts.graph_gaps_h200 import KERNELS_PER_LAYER, LAYERS, decode_like_step, replay_us, tiny_tensors

ROW_WIDTH, STORE_ROWS = 256, 98304 * 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    generator = torch.Generator().manual_seed(0)
    tiny = tiny_tensors(device)
    device_store = torch.randn(STORE_ROWS, ROW_WIDTH, device=device).bfloat16()
    host_store = torch.randn(STORE_ROWS, ROW_WIDTH).bfloat16().pin_memory()
    buffer = torch.zeros(8192 + 8, ROW_WIDTH, device=device, dtype=torch.bfloat16)

    def listing(rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        source = torch.randperm(STORE_ROWS, generator=generator)[:rows].to(device)
        target = torch.randperm(8192, generator=generator)[:rows].to(device)
        return source, target, torch.ones(rows, dtype=torch.bool, device=device)

    token_rows = (torch.arange(8, device=device), torch.arange(8, device=device) + 777,
                  torch.ones(8, dtype=torch.bool, device=device))
    listing_1024, listing_8 = listing(1024), listing(8)
    extras = {
        "none": None,
        "device to device, 1024 rows": lambda: ops.copy_rows(device_store, buffer, *listing_1024, backend="triton"),
        "device to pinned host, 8 rows (a token)": lambda: ops.copy_rows(
            buffer, host_store, *token_rows, backend="triton"),
        "pinned host to device, 8 rows": lambda: ops.copy_rows(host_store, buffer, *listing_8, backend="triton"),
        "pinned host to device, 1024 rows": lambda: ops.copy_rows(host_store, buffer, *listing_1024, backend="triton"),
    }

    def step(extra) -> None:
        decode_like_step(tiny, None if extra is None else lambda layer: extra())

    results = {}
    base_graph = capture_graph(lambda: step(None))
    for name, extra in extras.items():
        graph = capture_graph(lambda extra=extra: step(extra))
        alone = None
        if extra is not None:
            alone_graph = capture_graph(lambda extra=extra: [extra() for _ in range(LAYERS)])
            alone = replay_us(alone_graph, replays=60, warmup=10)
        rounds = [(replay_us(base_graph, 60, 10), replay_us(graph, 60, 10)) for _ in range(3)]
        base, with_extra = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
        results[name] = {"base_us": base, "with_extra_us": with_extra, "extra_us": with_extra - base,
                         "extra_alone_us": alone}
        print(f"{name:42s} base {base:8.1f} us  with {with_extra:8.1f} us  extra {with_extra - base:7.1f} us"
              f"  the extra launches alone {alone if alone is None else round(alone, 1)} us", flush=True)
    (args.out / "graph_host_access.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "layers": LAYERS,
         "kernels_per_layer": KERNELS_PER_LAYER, "results": results}, indent=1))


if __name__ == "__main__":
    main()
