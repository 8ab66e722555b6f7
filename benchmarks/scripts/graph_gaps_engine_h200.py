"""Which part of the offload engine widens the gap between all the kernels of a graph.

graph_gaps_h200.py found the gap unchanged by pinned or registered host memory, by kernels reading or writing it,
and by the graph's size. This puts the engine's own steps into the graph of 36 "layers" of 75 tiny kernels, one
kind per graph: an exact token fetch (OffloadEngine.fetch_tokens: the plan, the copy and the translation; 4
engines, each over a 96k-token, 8-group store), the plan alone, the translation alone. Median gap between
consecutive kernels over two profiled replays (torch.profiler), and the replay's CUDA-event time.

    PYTHONPATH=. python benchmarks/scripts/graph_gaps_engine_h200.py --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from asynctls_hf.bench.ops_bench import capture_graph
from asynctls_hf.offload.engine import OffloadEngine
from asynctls_hf.offload.store import HostBlockStore
from asynctls_hf.offload.transport import CudaStreamTransport
from benchmarks.scripts.graph_gaps_h200 import decode_like_step, gaps_and_time, tiny_tensors

CONTEXT, GROUPS, WIDTH, PICKS, SLOTS = 98304, 8, 128, 944, 8192


def engines_for(device: torch.device) -> tuple[list[OffloadEngine], torch.Tensor, torch.Tensor]:
    """Four exact token-granularity engines over pinned 96k-token, 8-group stores, and the positions [1, 8, 128 +
    PICKS] (the window, then random picks) and validity a step of theirs translates."""
    transport = CudaStreamTransport(device)
    engines = []
    for _ in range(4):
        store = HostBlockStore(1, GROUPS, WIDTH, WIDTH, 64, torch.bfloat16, capacity_tokens=CONTEXT,
                               write_stream=transport.stream)
        chunk = torch.randn(1, GROUPS, CONTEXT, WIDTH, device=device, dtype=torch.bfloat16)
        engine = OffloadEngine(store, SLOTS, transport, device, window_tokens=128, granularity="token")
        engine.append(chunk, chunk)
        engine.finish_pending()
        engines.append(engine)
    torch.cuda.synchronize()
    generator = torch.Generator().manual_seed(0)
    picks = torch.stack([torch.randperm(CONTEXT, generator=generator)[:PICKS] for _ in range(GROUPS)])
    positions = torch.cat([torch.arange(128).expand(GROUPS, -1), picks], dim=1)[None].to(device)
    return engines, positions, torch.ones_like(positions, dtype=torch.bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    tiny = tiny_tensors(device)
    engines, positions, valid = engines_for(device)
    selected = positions[..., 128:].contiguous()

    def step(extra=None) -> None:
        decode_like_step(tiny, None if extra is None else lambda layer: extra(engines[layer % 4]))

    variants = {
        "tiny kernels alone": None,
        "exact token fetch per layer (plan, copy, translate)": lambda engine: engine.fetch_tokens(
            positions, valid, fixed=128),
        "the plan alone per layer": lambda engine: engine.resident.plan(selected, engine._store_units, row_tokens=1),
        "the translation alone per layer": lambda engine: engine.translate(positions, valid, 128),
    }
    results = {}
    for name, extra in variants.items():
        gap, micros = gaps_and_time(capture_graph(lambda extra=extra: step(extra)))
        results[name] = {"median_gap_us": gap, "replay_us": micros}
        print(f"{name:60s} median gap {gap:6.3f} us  replay {micros:8.1f} us", flush=True)
    (args.out / "graph_gaps_engine.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    main()
