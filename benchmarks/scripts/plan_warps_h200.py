"""How wide the circular resident-set plan's programs should be: one decode step's 36 plans (one per Qwen3-8B layer,
8 groups, 8192 token slots, a 96k-token store) replayed from a CUDA graph, for each `num_warps`.

Each (row, group) program looks up the wanted token ids (1024 or 2048), stamps the wanted slots, scans for victims
and writes the copies. Each plan's wanted ids share all but `--miss-share` of the previous plan's, and every replay
plans fresh ids, so the hit rate is about 1 - miss share (a first version replayed the same two sets, which all
stayed resident: benchmarks/2026-11-30_plan_warps_h200/all_hits/). Median of the replays' CUDA-event times after
warm-up.

    python benchmarks/scripts/plan_warps_h200.py --out DIR
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from pathlib import Path

import torch

from asynctls_hf.bench.ops_bench import capture_graph
from asynctls_hf.offload.resident import ResidentSet
from asynctls_hf.ops import resident_triton

LAYERS, GROUPS, SLOTS, CONTEXT = 36, 8, 8192, 98304


def sliding_sets(batch: int, picks: int, miss_share: float, generator) -> torch.Tensor:
    """[LAYERS, batch, GROUPS, picks] unique token ids per (row, group): windows sliding over one random order of
    the context, so that each set shares all but miss_share of its ids with the one before."""
    shift = int(picks * miss_share)
    orders = torch.stack([torch.randperm(CONTEXT, generator=generator)[: picks + shift * LAYERS]
                          for _ in range(batch * GROUPS)]).view(batch, GROUPS, -1)
    return torch.stack([orders[..., layer * shift : layer * shift + picks] for layer in range(LAYERS)])


def plans(resident: ResidentSet, wanted: torch.Tensor, num_warps: int) -> None:
    """One step's 36 plans, one per set of `wanted` [LAYERS, B, NG, K], each followed by the step's increment."""
    for layer in range(LAYERS):
        resident_triton.plan_resident_blocks(
            wanted[layer], resident.slot_block, resident.slot_last_wanted, resident.block_slot, resident.step,
            resident.counters, CONTEXT, SLOTS, 0, cursor=resident.cursor, num_warps=num_warps,
        )
        resident.step += 1


def timed(batch: int, picks: int, miss_share: float, num_warps: int, repeats: int) -> dict:
    """Each replay plans fresh sliding sets (copied in before its timing starts)."""
    generator = torch.Generator().manual_seed(0)
    sets = [sliding_sets(batch, picks, miss_share, generator) for _ in range(repeats + 4)]
    wanted = sets[0].cuda()
    resident = ResidentSet(batch, GROUPS, SLOTS, CONTEXT, "cuda", circular=True)
    graph = capture_graph(functools.partial(plans, resident, wanted, num_warps))  # its warm-up fills the slots
    resident.counters.zero_()
    times = []
    for repeat in range(repeats + 3):
        wanted.copy_(sets[repeat + 1])
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        if repeat >= 3:
            times.append(start.elapsed_time(end))
    steps, wanted_ids, hits, copied = resident.counters.tolist()
    return {"batch": batch, "picks": picks, "num_warps": num_warps, "ms per step": statistics.median(times),
            "us per plan": statistics.median(times) * 1000 / LAYERS, "hit rate": hits / wanted_ids}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miss-share", type=float, default=0.13)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for batch in (1, 4):
        for picks in (1024, 2048):
            for num_warps in (4, 8, 16):
                rows.append(timed(batch, picks, args.miss_share, num_warps, args.repeats))
                print(json.dumps(rows[-1]), flush=True)
    environment = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "miss_share": args.miss_share}
    (args.out / "plan_warps.json").write_text(json.dumps({"environment": environment, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
