"""How fast single-token copies from the pinned store are, by how the copy list and the store are laid out.

One decode step's token copies for 36 Qwen3-8B layers (8 groups, 128-wide bf16 keys and values: 256 bytes each per
token), a 48k-token store per layer, `--picks` listed picks per (row, group) of which `--miss-share` are copies, at
random positions. Each variant copies the same tokens with ops.copy_rows, one launch per layer, the 36 launches
captured in a CUDA graph and its replays timed with CUDA events (ops_bench.gpu_time_us: the median, L2 flushed
before each; a first version timed the launches from Python, benchmarks/2026-11-30_copy_layout_h200/eager/):

- separate: keys and values from separate stores (256-byte reads), the copies scattered among the hits in the list
  as the plan writes it, keys then values (two launches per layer);
- compact: the same with the copies first in each (row, group)'s part of the list (the same launch grid);
- interleaved: compact, from a store holding each token's key and value side by side (one 512-byte read), into one
  target row;
- split: the same read, each entry split between a key and a value target (what the offload engine runs since);
- hugepage: split, the store's mapping advised MADV_HUGEPAGE before it is page-locked;
- raw: one contiguous pinned-to-device copy of the same bytes per layer (the copy engine), the bus's rate.

The 2026-11-30 results (benchmarks/2026-11-30_copy_layout_h200/) came from this script at commit 71d0a07, whose
separate and compact variants copied keys and values in one launch (a paired mode of copy_rows, since replaced by
the split) and which had no split variant.

    python benchmarks/scripts/copy_layout_h200.py --out DIR
"""

from __future__ import annotations

import argparse
import functools
import json
import mmap
from pathlib import Path

import torch

from asynctls_hf import ops
from asynctls_hf.bench.ops_bench import capture_graph, gpu_time_us
from asynctls_hf.offload import pinned

LAYERS, GROUPS, WIDTH = 36, 8, 128


def store(tokens: int, width: int, hugepage: bool) -> torch.Tensor:
    """A page-locked [tokens, width] bf16 host tensor (its mapping advised MADV_HUGEPAGE first when asked)."""
    if not hugepage:
        return pinned.page_locked_empty((tokens, width), torch.bfloat16)
    nbytes = tokens * width * 2
    mapping = pinned.PageLockedMapping(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    mapping.madvise(mmap.MADV_HUGEPAGE)
    mapping.register()
    return torch.frombuffer(mapping, dtype=torch.uint8).view(torch.bfloat16).view(tokens, width)


def copy_lists(batch: int, context: int, picks: int, miss_share: float, compact: bool, generator):
    """(source_rows, target_rows, valid) [batch * GROUPS * picks] for one layer."""
    segments = batch * GROUPS
    positions = torch.stack([torch.randperm(context, generator=generator)[:picks] for _ in range(segments)])
    copies = torch.rand(segments, picks, generator=generator) < miss_share
    if compact:
        order = torch.argsort((~copies).to(torch.int8), dim=1, stable=True)
        positions, copies = positions.gather(1, order), copies.gather(1, order)
    segment = torch.arange(segments)[:, None]
    source = torch.where(copies, segment * context + positions, 0)
    target = torch.where(copies, segment * picks + torch.arange(picks)[None, :], 0)
    return source.flatten().cuda(), target.flatten().cuda(), copies.flatten().cuda()


def timed(launch) -> float:
    """Milliseconds of one replay of launch() (all 36 layers' launches) captured in a CUDA graph, as a graphed decode
    step runs them (no Python or launch overhead): the median of ops_bench.gpu_time_us."""
    return gpu_time_us(capture_graph(launch).replay, warmup_ms=25, rep_ms=200) / 1000


def copy_separate(stores, targets, lists) -> None:
    """Every layer's listed keys, then values, from separate stores."""
    for (keys, values), (target_keys, target_values), layer_lists in zip(stores, targets, lists, strict=True):
        ops.copy_rows(keys, target_keys, *layer_lists)
        ops.copy_rows(values, target_values, *layer_lists)


def copy_interleaved(stores, targets, lists) -> None:
    """Every layer's listed tokens from stores holding keys and values side by side, one launch per layer, into one
    target row per token or (targets of pairs) split between a key and a value target."""
    for store_rows, target, layer_lists in zip(stores, targets, lists, strict=True):
        if isinstance(target, tuple):
            ops.copy_rows(store_rows, target[0], *layer_lists, second_target=target[1])
        else:
            ops.copy_rows(store_rows, target, *layer_lists)


def copy_raw(host: torch.Tensor, device: torch.Tensor) -> None:
    """The same bytes per layer as one contiguous pinned-to-device copy."""
    for _ in range(LAYERS):
        device.copy_(host, non_blocking=True)


def measure(batch: int, args, generator) -> dict:
    tokens = batch * GROUPS * args.context
    listed = batch * GROUPS * args.picks
    scattered = [copy_lists(batch, args.context, args.picks, args.miss_share, False, generator) for _ in range(LAYERS)]
    compact = [copy_lists(batch, args.context, args.picks, args.miss_share, True, generator) for _ in range(LAYERS)]
    copied_bytes = sum(int(lists[2].sum()) for lists in compact) * 2 * WIDTH * 2
    result = {"batch": batch, "MB per step": copied_bytes / 1e6}
    stores = [(store(tokens, WIDTH, False), store(tokens, WIDTH, False)) for _ in range(LAYERS)]
    targets = [tuple(torch.empty(listed, WIDTH, dtype=torch.bfloat16, device="cuda") for _ in range(2))
               for _ in range(LAYERS)]
    for name, lists in (("separate", scattered), ("compact", compact)):
        result[name] = timed(functools.partial(copy_separate, stores, targets, lists))
    del stores
    wide_targets = [torch.empty(listed, 2 * WIDTH, dtype=torch.bfloat16, device="cuda") for _ in range(LAYERS)]
    for name, hugepage, layer_targets in (("interleaved", False, wide_targets), ("split", False, targets),
                                          ("hugepage", True, targets)):
        wide = [store(tokens, 2 * WIDTH, hugepage) for _ in range(LAYERS)]
        result[name] = timed(functools.partial(copy_interleaved, wide, layer_targets, compact))
        del wide
    per_layer = copied_bytes // LAYERS
    host = pinned.page_locked_empty((per_layer,), torch.uint8)
    device = torch.empty(per_layer, dtype=torch.uint8, device="cuda")
    result["raw"] = timed(functools.partial(copy_raw, host, device))
    for name in ("separate", "compact", "interleaved", "split", "hugepage", "raw"):
        result[f"{name} GB/s"] = copied_bytes / result[name] / 1e6
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--context", type=int, default=49152)
    parser.add_argument("--picks", type=int, default=1024)
    parser.add_argument("--miss-share", type=float, default=0.13)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    rows = []
    for batch in (int(text) for text in args.batches.split(",")):
        rows.append(measure(batch, args, generator))
        print(json.dumps(rows[-1]), flush=True)
    environment = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "transparent_hugepage": thp.read_text().strip() if thp.exists() else None, **vars(args)}
    environment["out"] = str(args.out)
    (args.out / "copy_layout.json").write_text(json.dumps({"environment": environment, "rows": rows}, indent=1))
    print(json.dumps(environment))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
