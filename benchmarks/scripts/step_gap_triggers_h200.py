"""What turns the graphed decode step's 0.10 us kernel gaps into 0.42 us, timed without a profiler.

step_gap_state_h200.py saw the resident Qwen3-8B step (96k, batch 1) keep its narrow gaps through a second and
third capture and lose them after 20 s idle; step_gap_bisect_h200.py saw them lost right after the first variant.
Both profiled every variant with torch.profiler (CUPTI). This runs one cache and one captured step through a
sequence of actions given on the command line and times the step after each without any profiler: the wall time
per step and the GPU time of the step (CUDA events around the forward, whose graph replay is the step's GPU
work). `--methods` builds one cache per method (the resident and the offloaded step side by side in one process).
Actions: `time` (STEPS steps of each method in turn), `idleN` (N seconds idle), `idlepollN` (the same while
nvidia-smi is polled), `profileN` (N steps of each under torch.profiler), `burnN` (N seconds of matrix products),
`pcieN` (N seconds of 1 GiB host-to-device copies), `pinN` (N GiB of host memory page-locked and registered with
CUDA as the offloaded store is, held to the end), `hostread` / `hostwrite` (one kernel reading or writing
registered host memory, outside the graphs), `hostgraph` (the read in a graph of its own, replayed),
`sidestream` / `hostwritebig` / `sidehostwrite` (14 GiB of kernel writes into the GPU on a side stream, into
registered host memory on the current stream, or both, as the offloaded fill writes its store), `offloadfill` (an
offloaded cache filled, as --methods graphed-offload-token fills it, and never stepped). A
thread samples the GPU's SM clock, PCIe link generation and width while steps are timed (nvidia-smi).

    PYTHONPATH=. python benchmarks/scripts/step_gap_triggers_h200.py --methods graphed,graphed-offload-token \
        --actions time,time,idle20,time,profile2,time --out DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForCausalLM

import asynctls_hf
from asynctls_hf import ops
from asynctls_hf.api import cache_argument
from asynctls_hf.bench.decode_step_bench import (
    ASYNCTLS_SETTINGS,
    DTYPE,
    SmoothedQueries,
    filled_asynctls_cache,
)
from asynctls_hf.bench.generate_bench import model_config
from asynctls_hf.bench.ops_bench import capture_graph
from asynctls_hf.cache import cache as cache_module
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.offload.pinned import page_locked_empty
from asynctls_hf.offload.transport import CudaStreamTransport
from benchmarks.scripts.step_gap_state_h200 import GpuSampler, burn

CONTEXT, STEPS = 98304, 20
QUERY = "clocks.sm,pcie.link.gen.current,pcie.link.width.current"


class Stepper:
    """Decode steps of `model` over `cache` from position CONTEXT on, each timed by the wall clock and by CUDA
    events around the forward."""

    def __init__(self, model, cache):
        self.model, self.cache, self.position = model, cache, CONTEXT
        device = next(model.parameters()).device
        self.input_ids = torch.zeros((1, 1), dtype=torch.long, device=device)

    def step(self) -> tuple[float, float]:
        """(wall ms, GPU ms) of one step."""
        began = time.perf_counter()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        position_ids = torch.full((1, 1), self.position, device=self.input_ids.device)
        start.record()
        logits = self.model(input_ids=self.input_ids, position_ids=position_ids, use_cache=True, logits_to_keep=1,
                            **{cache_argument(self.model): self.cache}).logits
        end.record()
        self.input_ids = logits[:, -1].argmax(dim=-1, keepdim=True)
        self.input_ids.cpu()
        self.position += 1
        return (time.perf_counter() - began) * 1e3, start.elapsed_time(end)


def pcie(seconds: float) -> None:
    """Host-to-device copies of 1 GiB from pinned memory for `seconds`."""
    source = torch.empty(1 << 30, dtype=torch.uint8).pin_memory()
    target = torch.empty_like(source, device="cuda")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        target.copy_(source, non_blocking=True)
        torch.cuda.synchronize()


def host_access(write: bool, graph: bool = False):
    """One copy_rows launch reading 256 rows of 512 bytes from registered host memory into the GPU, or writing
    them there: a kernel touching mapped host memory, as the offloaded step's copy and append do; with `graph`,
    the read captured in a CUDA graph and replayed three times. Returns what must stay alive (the graph)."""
    host = page_locked_empty((4096, 256), torch.bfloat16)
    device = torch.zeros((4096, 256), dtype=torch.bfloat16, device="cuda")
    rows = torch.arange(256, device="cuda")
    valid = torch.ones(256, dtype=torch.bool, device="cuda")
    source, target = (device, host) if write else (host, device)
    ops.copy_rows(source, target, rows, rows, valid, backend="triton")
    torch.cuda.synchronize()
    if not graph:
        return host
    captured = capture_graph(lambda: ops.copy_rows(source, target, rows, rows, valid, backend="triton"))
    for _ in range(3):
        captured.replay()
    torch.cuda.synchronize()
    return host, captured


def stream_writes(to_host: bool, side: bool):
    """What the offloaded cache's fill does, in parts: 56 writes of 256 MiB by copy_rows into registered host memory
    (to_host) or into the GPU, each on a side stream after an event of the current stream (side, as
    HostBlockStore.append with its write_stream) or on the current stream. Returns what must stay alive."""
    rows_per_write, width = 1 << 19, 256
    target = page_locked_empty((rows_per_write, width), torch.bfloat16) if to_host else torch.empty(
        (rows_per_write, width), dtype=torch.bfloat16, device="cuda")
    stream = torch.cuda.Stream() if side else torch.cuda.current_stream()
    rows = torch.arange(rows_per_write, device="cuda")
    valid = torch.ones(rows_per_write, dtype=torch.bool, device="cuda")
    for _ in range(56):
        source = torch.randn((rows_per_write, width), dtype=torch.bfloat16, device="cuda")
        produced = torch.cuda.Event()
        produced.record()
        with torch.cuda.stream(stream):
            stream.wait_event(produced)
            ops.copy_rows(source, target, rows, rows, valid, backend="triton")
        source.record_stream(stream)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    return target, stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", type=lambda text: text.split(","), default=["graphed"],
                        help=f"comma-separated, of {', '.join(ASYNCTLS_SETTINGS)}: one cache each, filled in turn")
    parser.add_argument("--actions", type=lambda text: text.split(","), required=True)
    parser.add_argument("--one-stream", action="store_true",
                        help="offloaded caches copy and write their store on the current stream, no side stream (since "
                             "2026-12-03 exact mode's default; this forces it for lag 1 too)")
    args = parser.parse_args()
    if args.one_stream:
        cache_module.default_transport = lambda device, side_stream=True, graph_only=False: CudaStreamTransport(
            device, stream=torch.cuda.current_stream(device))
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    with device:
        model = AutoModelForCausalLM.from_config(model_config("qwen3-8b", CONTEXT + 4096), dtype=DTYPE).eval()
    sampler = GpuSampler(query=QUERY)
    sampler.start()
    rows, held = [], []
    with torch.no_grad(), SmoothedQueries(model, 0.05), asynctls_hf.patched(model) as patched_model:
        steppers = {}
        for method in args.methods:  # each cache keeps the config it was built with; decoding follows the cache's
            patched_model._asynctls_state.config = AsyncTLSConfig().replace(**ASYNCTLS_SETTINGS[method])
            steppers[method] = Stepper(model, filled_asynctls_cache(model, 1, CONTEXT, CONTEXT + 2048, device))
            for _ in range(4):  # the eager step, the capture, two replays
                steppers[method].step()
        for index, action in enumerate(args.actions):
            if action == "time":
                for method, stepper in steppers.items():
                    label = f"{index}: time {method}"
                    sampler.label = label
                    times = [stepper.step() for _ in range(STEPS)]
                    sampler.label = None
                    row = {"action": label, "wall_ms": statistics.median(t[0] for t in times),
                           "gpu_ms": statistics.median(t[1] for t in times), "gpu": sampler.lines(label)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            elif action.startswith("idlepoll"):
                sampler.label = f"{index}: {action}"
                time.sleep(float(action[8:]))
                sampler.label = None
            elif action.startswith("idle"):
                time.sleep(float(action[4:]))
            elif action.startswith("profile"):
                with profile(activities=[ProfilerActivity.CUDA]):
                    for stepper in steppers.values():
                        for _ in range(int(action[7:])):
                            stepper.step()
                    torch.cuda.synchronize()
            elif action.startswith("burn"):
                burn(float(action[4:]))
            elif action.startswith("pcie"):
                pcie(float(action[4:]))
            elif action in ("hostread", "hostwrite", "hostgraph"):
                held.append(host_access(write=action == "hostwrite", graph=action == "hostgraph"))
            elif action in ("sidestream", "hostwritebig", "sidehostwrite"):
                held.append(stream_writes(to_host=action != "sidestream", side=action != "hostwritebig"))
            elif action == "offloadfill":
                patched_model._asynctls_state.config = AsyncTLSConfig().replace(
                    **ASYNCTLS_SETTINGS["graphed-offload-token"])
                held.append(filled_asynctls_cache(model, 1, CONTEXT, CONTEXT + 2048, device))
                torch.cuda.synchronize()
            elif action.startswith("pin"):
                held.append(page_locked_empty((int(action[3:]) << 30,), torch.uint8))
            else:
                raise SystemExit(f"unknown action {action!r}")
    sampler.stopped = True
    name = f"step_gap_triggers_{'-'.join(args.methods)}_{'-'.join(args.actions)}{'_one-stream' * args.one_stream}.json"
    (args.out / name).write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "methods": args.methods,
         "actions": args.actions, "replays": {method: stepper.cache.graph_replays for method, stepper in
                                              steppers.items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
