"""Host-to-device transfers of the offload engine at the sizes decode produces, against the bus's ceiling.

    asynctls-hf bench offload-transfer [--attention gqa|mla|both] [--context 96k] [--batches 1,4,8]
        [--misses 8,16,32,64] [--out DIR]

One layer's offloaded K/V (the ops benchmark's shapes: the Qwen3-8B layer, 8 groups of 128 + 128; the GLM-4.7-Flash
layer, one 576-wide latent holding its values) sits in a pinned HostBlockStore of `--context` tokens. A decode step
with temporal locality r over 128 kept blocks misses about (1 - r) * 128 blocks per (row, group): `--misses`.
For each (shape, batch, misses) it times, as medians of `--reps` runs after a warm-up:
    raw     one pinned host tensor of the same bytes copied to the GPU (non_blocking, CUDA events): the ceiling;
    engine  the resident set's plan for that many misses per (row, group), then CudaStreamTransport.copy_blocks
            (the copy kernel reading the pinned store, on the side stream) and its wait (wall time, the device
            synchronized before and after);
    copy    the copy alone, its plan made beforehand (CUDA events on the compute stream around copy_blocks and
            its wait): what the copy kernel reaching into pinned memory achieves.
and reports GB/s and engine / raw (the offload issue asks for at least 70%). `--device cpu` runs the same steps
with SyncTransport on small sizes, as a check that the benchmark runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from asynctls_hf.bench.ops_bench import MODELS, ModelShape
from asynctls_hf.cli_options import integer_list
from asynctls_hf.offload import CudaStreamTransport, HostBlockStore, ResidentSet, SyncTransport
from asynctls_hf.offload.pinned import page_locked_empty

BLOCK_SIZE = 64
DTYPE = torch.bfloat16
COLUMNS = [
    ("model", "model", "{}"),
    ("batch", "batch", "{}"),
    ("misses", "missing blocks per group", "{}"),
    ("megabytes", "MB per layer and step", "{:.1f}"),
    ("raw_gbps", "raw pinned H2D GB/s", "{:.1f}"),
    ("engine_gbps", "engine GB/s", "{:.1f}"),
    ("engine_share", "engine / raw", "{:.0%}"),
    ("engine_ms", "engine ms", "{:.3f}"),
    ("copy_gbps", "copy alone GB/s", "{:.1f}"),
    ("copy_share", "copy alone / raw", "{:.0%}"),
]


def build_store(shape: ModelShape, batch: int, context: int, pin_memory: bool) -> HostBlockStore:
    """A host store of `context` tokens for `batch` rows (constant data: only the bytes moved matter)."""
    store = HostBlockStore(
        batch, shape.groups, shape.key_width, shape.value_width, BLOCK_SIZE, DTYPE,
        values_in_keys=shape.values_in_keys, capacity_tokens=context, pin_memory=pin_memory,
    )  # fmt: skip
    keys = torch.ones((), dtype=DTYPE).expand(batch, shape.groups, context, shape.key_width)
    values = None if shape.values_in_keys else torch.ones((), dtype=DTYPE).expand(
        batch, shape.groups, context, shape.value_width
    )
    store.append(keys, values)
    return store


def median_wall_ms(fn, reps: int, synchronize) -> float:
    """Median wall time of fn() in milliseconds, the device synchronized around each call, after one warm-up."""
    fn()
    times = []
    for _ in range(reps):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times)


def raw_copy_ms(nbytes: int, device: torch.device, reps: int) -> float:
    """Median time of one H2D copy of `nbytes` from pinned memory (CUDA events), or a host copy on the CPU."""
    if device.type != "cuda":
        source = torch.empty(nbytes, dtype=torch.uint8)
        return median_wall_ms(source.clone, reps, lambda: None)
    source = page_locked_empty((nbytes,), torch.uint8)
    target = torch.empty(nbytes, dtype=torch.uint8, device=device)
    times = []
    for repetition in range(reps + 1):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        target.copy_(source, non_blocking=True)
        end.record()
        end.synchronize()
        if repetition:
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure(shape: ModelShape, store: HostBlockStore, misses: int, device: torch.device, reps: int) -> dict:
    """Time the engine's copy of `misses` blocks per (row, group) into empty slots, and the raw ceiling."""
    batch, groups = store.batch, store.num_groups
    slots = torch.zeros((batch, groups, misses * BLOCK_SIZE, shape.key_width), dtype=DTYPE, device=device)
    value_slots = None if shape.values_in_keys else torch.zeros_like(slots[..., : shape.value_width])
    transport = CudaStreamTransport(device) if device.type == "cuda" else SyncTransport()
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    generator = torch.Generator().manual_seed(0)
    # Each run starts from empty slots and wants `misses` random blocks per (row, group), drawn beforehand: a run
    # times the engine's own work, planning included.
    runs = [
        (
            ResidentSet(batch, groups, misses, store.capacity_blocks, device),
            torch.rand(batch, groups, store.n_blocks, generator=generator).argsort(dim=-1)[..., :misses].to(device),
        )
        for _ in range(reps + 1)
    ]

    def engine_step():
        resident, wanted = runs.pop()
        plan = resident.plan(wanted, row_tokens=store.block_size)
        transport.wait(transport.copy_blocks(lambda: plan, (), store, slots, value_slots))

    nbytes = batch * groups * misses * store.block_bytes
    plans = [
        ResidentSet(batch, groups, misses, store.capacity_blocks, device).plan(wanted, row_tokens=store.block_size)
        for _, wanted in runs
    ]
    engine_ms = median_wall_ms(engine_step, reps, synchronize)
    copy_ms = copy_only_ms(transport, plans, store, slots, value_slots, device)
    raw_ms = raw_copy_ms(nbytes, device, reps)
    return {
        "model": shape.name,
        "batch": batch,
        "misses": misses,
        "megabytes": nbytes / 1e6,
        "raw_gbps": nbytes / raw_ms / 1e6,
        "engine_gbps": nbytes / engine_ms / 1e6,
        "engine_share": raw_ms / engine_ms,
        "engine_ms": engine_ms,
        "copy_gbps": nbytes / copy_ms / 1e6,
        "copy_share": raw_ms / copy_ms,
    }


def copy_only_ms(transport, plans: list, store: HostBlockStore, slots: torch.Tensor, value_slots, device) -> float:
    """Median time of the copy alone (copy_blocks and its wait, the plan made beforehand): CUDA events around it on
    the compute stream, so it is the GPU time from issue to landing; wall time on the CPU."""
    def copy(plan):
        transport.wait(transport.copy_blocks(lambda: plan, (), store, slots, value_slots))

    if device.type != "cuda":
        return median_wall_ms(lambda: copy(plans.pop()), len(plans) - 1, lambda: None)
    times = []
    for repetition, plan in enumerate(plans):
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        copy(plan)
        end.record()
        end.synchronize()
        if repetition:
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]] = COLUMNS) -> str:
    """rows as a markdown table of `columns`: (key, header, format) each."""
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out: Path, name: str, heading: str, environment: dict, rows: list[dict],
                  columns: list[tuple[str, str, str]]) -> None:
    """OUT/NAME.json ({"environment", "rows"}) and OUT/NAME.md (`heading`, then the rows' table). A benchmark calls
    it after every row, so a run cut short by a time limit keeps the rows it finished."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"environment": environment, "rows": rows}, indent=1))
    (out / f"{name}.md").write_text(heading + markdown_table(rows, columns) + "\n")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="asynctls-hf bench offload-transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attention", choices=("gqa", "mla", "both"), default="both",
                        help="gqa: the Qwen3-8B layer; mla: the GLM-4.7-Flash layer; both (default)")
    parser.add_argument("--context", type=lambda text: integer_list(text)[0], default=98304,
                        help="tokens in the host store; k = 1024 (default: 96k)")
    parser.add_argument("--batches", type=integer_list, default=[1, 4, 8], help="batch sizes (default: 1,4,8)")
    parser.add_argument("--misses", type=integer_list, default=[8, 16, 32, 64],
                        help="blocks missing per (row, group) and step (default: 8,16,32,64)")
    parser.add_argument("--reps", type=int, default=20, help="timed runs per cell; the median is kept (default: 20)")
    parser.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a check that it runs)")
    parser.add_argument("--out", type=Path, default=Path("offload_transfer_results"),
                        help="folder for offload_transfer.json and offload_transfer.md")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("the offload transfer benchmark needs a CUDA GPU; pass --device cpu for a check run")
    environment = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "dtype": str(DTYPE),
        "context": args.context,
        "block_size": BLOCK_SIZE,
        "reps": args.reps,
    }
    rows = []
    for name in ["gqa", "mla"] if args.attention == "both" else [args.attention]:
        for batch in args.batches:
            store = build_store(MODELS[name], batch, args.context, pin_memory=device.type == "cuda")
            for misses in args.misses:
                row = measure(MODELS[name], store, misses, device, args.reps)
                rows.append(row)
                print(" ".join(f"{header}={fmt.format(row[key])}" for key, header, fmt in COLUMNS), flush=True)
            del store
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "offload_transfer.json").write_text(json.dumps({"environment": environment, "rows": rows}, indent=1))
    heading = f"# Offload transfers\n\n{environment['device']}, torch {environment['torch']}, {DTYPE}.\n\n"
    (args.out / "offload_transfer.md").write_text(heading + markdown_table(rows) + "\n")
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
