"""Triton kernels of an offloaded layer's resident set: its plan (naive.plan_resident_blocks), forgetting stale
blocks (naive.forget_resident_blocks), translating token positions into the device buffer
(naive.translate_positions) and the ids it plans with lag 1, sorted with their successors
(naive.sorted_with_successors), one launch each.

The plan: one program per (row, group), with its copies as rows for copy_rows and its statistics counted. The K
wanted blocks live in registers; the S slots are visited in chunks. Least recently wanted first, the eviction order
is a rank, not a sort: slot s's rank is the number of slots before it in the order (eviction key, slot index), the
key being the step the slot was last wanted, or a number above any step for a slot wanted now; miss number m goes
to the slot of rank m. The keys are written to a scratch row first so that every chunk can read every other chunk's
keys after a barrier. That costs S^2 comparisons: fine for a few hundred block slots. With a cursor (thousands of
token slots) the victims are the slots not wanted now in circular order from it, found by one running count over
the slots: the wanted slots are stamped with the step first (their last-wanted step), and each victim's slot
written to its rank in a scratch row.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops import naive
from asynctls_hf.ops.triton_common import check_index, check_same_device, require

SLOT_CHUNK = 32
CIRCULAR_CHUNK = 1024  # slots per iteration of the first-in-first-out plan, whose work is linear in the slots
WANTED_KEY = 2**62  # above any step number: a slot wanted now is never a victim
# Warps per program of the circular plan: 16 plans a step's 36 layers 19-29% faster than 4 at 1024-2048 picks per
# row and group and a hit rate of 0.85 (H200, benchmarks/2026-11-30_plan_warps_h200/); the ranked plan keeps 4.
CIRCULAR_WARPS = 16
RANKED_WARPS = 4


@triton.jit
def _lookup_wanted(wanted_ptr, block_slot_ptr, row_group, K, C, K_PAD: tl.constexpr):
    """One (row, group)'s wanted ids [K_PAD] -> (ids, valid, their slots (-1: not resident), hits, copies, each
    copy's rank among the copies)."""
    picks = tl.arange(0, K_PAD)
    wanted = tl.load(wanted_ptr + row_group * K + picks, mask=picks < K, other=-1)
    valid = wanted >= 0
    known = valid & (wanted < C)
    wanted_slot = tl.load(block_slot_ptr + row_group * (C + 1) + tl.where(known, wanted, C), mask=known, other=-1)
    wanted_slot = tl.where(known, wanted_slot, -1)
    hits = wanted_slot >= 0
    copies = valid & (wanted_slot < 0)
    miss_rank = tl.cumsum(copies.to(tl.int32), 0) - 1
    return wanted, valid, wanted_slot, hits, copies, miss_rank


@triton.jit
def _commit_plan(
    slot_block_ptr, slot_last_wanted_ptr, block_slot_ptr, step_ptr, counters_ptr,
    hits_ptr, copy_mask_ptr, dest_slots_ptr, source_rows_ptr, target_rows_ptr,
    row_group, wanted, valid, wanted_slot, hits, copies, dest_slots,
    K, S, C, source_blocks_per_row, target_slots_per_row, reserved_slots, K_PAD: tl.constexpr,
):
    """Write a planned (row, group) back: the maps, the outputs, the copies' rows and the counters."""
    picks = tl.arange(0, K_PAD)
    slot_block_row = slot_block_ptr + row_group * S
    block_slot_row = block_slot_ptr + row_group * (C + 1)
    # The evicted blocks leave block_slot, the misses enter it (disjoint ids: an evicted block is not wanted).
    evicted = tl.load(slot_block_row + dest_slots, mask=copies, other=-1)
    tl.store(block_slot_row + evicted, tl.full((K_PAD,), -1, tl.int64), mask=copies & (evicted >= 0))
    tl.store(block_slot_row + wanted, dest_slots, mask=copies)
    tl.debug_barrier()  # every evicted block read before a slot's new block is written
    new_slot = tl.where(hits, wanted_slot, dest_slots)
    step = tl.load(step_ptr)
    tl.store(slot_block_row + new_slot, wanted, mask=valid)
    tl.store(slot_last_wanted_ptr + row_group * S + new_slot, tl.full((K_PAD,), 0, tl.int64) + step, mask=valid)
    out = row_group * K + picks
    pick_ok = picks < K
    tl.store(hits_ptr + out, hits, mask=pick_ok)
    tl.store(copy_mask_ptr + out, copies, mask=pick_ok)
    tl.store(dest_slots_ptr + out, dest_slots, mask=pick_ok)
    source_rows = tl.where(copies, row_group * source_blocks_per_row + wanted, 0)
    target_rows = tl.where(copies, row_group * target_slots_per_row + reserved_slots + dest_slots, 0)
    tl.store(source_rows_ptr + out, source_rows, mask=pick_ok)
    tl.store(target_rows_ptr + out, target_rows, mask=pick_ok)
    tl.atomic_add(counters_ptr, (row_group == 0).to(tl.int64))
    tl.atomic_add(counters_ptr + 1, tl.sum(valid.to(tl.int64), 0))
    tl.atomic_add(counters_ptr + 2, tl.sum(hits.to(tl.int64), 0))
    tl.atomic_add(counters_ptr + 3, tl.sum(copies.to(tl.int64), 0))


@triton.jit
def _plan_resident_blocks_kernel(
    wanted_ptr, slot_block_ptr, slot_last_wanted_ptr, block_slot_ptr, step_ptr, counters_ptr, scratch_ptr,
    hits_ptr, copy_mask_ptr, dest_slots_ptr, source_rows_ptr, target_rows_ptr,
    K, S, C, source_blocks_per_row, target_slots_per_row, reserved_slots,
    WANTED_KEY: tl.constexpr, K_PAD: tl.constexpr, SLOT_CHUNK: tl.constexpr,
):
    row_group = tl.program_id(0).to(tl.int64)
    wanted, valid, wanted_slot, hits, copies, miss_rank = _lookup_wanted(
        wanted_ptr, block_slot_ptr, row_group, K, C, K_PAD
    )

    # Eviction keys of every slot, into the scratch row.
    last_wanted_row = slot_last_wanted_ptr + row_group * S
    scratch_row = scratch_ptr + row_group * S
    chunk = tl.arange(0, SLOT_CHUNK)
    for begin in range(0, S, SLOT_CHUNK):
        slots = begin + chunk
        in_range = slots < S
        wanted_here = tl.max(((wanted_slot[:, None] == slots[None, :]) & hits[:, None]).to(tl.int32), axis=0) > 0
        last_wanted = tl.load(last_wanted_row + slots, mask=in_range, other=0)
        tl.store(scratch_row + slots, tl.where(wanted_here, WANTED_KEY, last_wanted), mask=in_range)
    tl.debug_barrier()

    # Rank of each slot in (key, index) order; miss m takes the slot of rank m.
    dest_slots = tl.full((K_PAD,), -1, tl.int64)
    for begin in range(0, S, SLOT_CHUNK):
        slots = begin + chunk
        in_range = slots < S
        keys = tl.load(scratch_row + slots, mask=in_range, other=WANTED_KEY)
        rank = tl.zeros((SLOT_CHUNK,), tl.int32)
        for other_begin in range(0, S, SLOT_CHUNK):
            others = other_begin + chunk
            other_keys = tl.load(scratch_row + others, mask=others < S, other=WANTED_KEY)
            before = (other_keys[None, :] < keys[:, None]) | (
                (other_keys[None, :] == keys[:, None]) & (others[None, :] < slots[:, None])
            )
            rank += tl.sum((before & (others[None, :] < S)).to(tl.int32), axis=1)
        taken = (miss_rank[:, None] == rank[None, :]) & copies[:, None] & in_range[None, :]
        dest_slots = tl.maximum(dest_slots, tl.max(tl.where(taken, slots[None, :].to(tl.int64), -1), axis=1))

    _commit_plan(
        slot_block_ptr, slot_last_wanted_ptr, block_slot_ptr, step_ptr, counters_ptr,
        hits_ptr, copy_mask_ptr, dest_slots_ptr, source_rows_ptr, target_rows_ptr,
        row_group, wanted, valid, wanted_slot, hits, copies, dest_slots,
        K, S, C, source_blocks_per_row, target_slots_per_row, reserved_slots, K_PAD,
    )


@triton.jit
def _plan_resident_circular_kernel(
    wanted_ptr, slot_block_ptr, slot_last_wanted_ptr, block_slot_ptr, step_ptr, cursor_ptr, counters_ptr,
    scratch_ptr, hits_ptr, copy_mask_ptr, dest_slots_ptr, source_rows_ptr, target_rows_ptr,
    K, S, C, source_blocks_per_row, target_slots_per_row, reserved_slots,
    K_PAD: tl.constexpr, CHUNK: tl.constexpr,
):
    row_group = tl.program_id(0).to(tl.int64)
    wanted, valid, wanted_slot, hits, copies, miss_rank = _lookup_wanted(
        wanted_ptr, block_slot_ptr, row_group, K, C, K_PAD
    )
    misses = tl.sum(copies.to(tl.int32), 0)

    # A slot holding a block wanted now gets this step as its last-wanted step first (the commit writes the same),
    # so that the scan below tells those slots from the others; the scratch row takes the K victims in order.
    step = tl.load(step_ptr)
    last_wanted_row = slot_last_wanted_ptr + row_group * S
    victims_row = scratch_ptr + row_group * K_PAD
    chunk = tl.arange(0, CHUNK)
    tl.store(last_wanted_row + wanted_slot, tl.full((K_PAD,), 0, tl.int64) + step, mask=hits)
    tl.debug_barrier()

    # The slots not wanted now, in circular order from the cursor: victim m is the m-th of them. The scan stops at
    # the first chunk that completes the victims (usually the first: most slots are not wanted at a step).
    cursor = tl.load(cursor_ptr + row_group)
    new_cursor = cursor
    found = tl.sum(tl.zeros((CHUNK,), tl.int32), 0)
    begin = 0
    while (begin < S) & (found < misses):
        in_range = begin + chunk < S
        slots = (cursor + begin + chunk) % S
        free = in_range & (tl.load(last_wanted_row + slots, mask=in_range, other=step) != step)
        rank = found + tl.cumsum(free.to(tl.int32), 0) - 1
        take = free & (rank < misses)
        tl.store(victims_row + rank, slots, mask=take)
        last = tl.max(tl.where(take & (rank == misses - 1), slots, -1), 0)
        new_cursor = tl.where(last >= 0, (last + 1) % S, new_cursor)
        found += tl.sum(free.to(tl.int32), 0)
        begin += CHUNK
    tl.debug_barrier()
    dest_slots = tl.load(victims_row + miss_rank, mask=copies, other=-1)
    dest_slots = tl.where(copies, dest_slots, -1)
    tl.store(cursor_ptr + row_group, new_cursor)

    _commit_plan(
        slot_block_ptr, slot_last_wanted_ptr, block_slot_ptr, step_ptr, counters_ptr,
        hits_ptr, copy_mask_ptr, dest_slots_ptr, source_rows_ptr, target_rows_ptr,
        row_group, wanted, valid, wanted_slot, hits, copies, dest_slots,
        K, S, C, source_blocks_per_row, target_slots_per_row, reserved_slots, K_PAD,
    )


def plan_resident_blocks(
    wanted: torch.Tensor,
    slot_block: torch.Tensor,
    slot_last_wanted: torch.Tensor,
    block_slot: torch.Tensor,
    step: torch.Tensor,
    counters: torch.Tensor,
    source_blocks_per_row: int,
    target_slots_per_row: int,
    reserved_slots: int,
    cursor: torch.Tensor | None = None,
    num_warps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One launch of naive.plan_resident_blocks (shapes and semantics there); the state is updated in place.
    Least recently wanted victims cost a rank over all slots (S^2 / SLOT_CHUNK work per row and group, for a few
    hundred slots); with `cursor`, victims in circular order (linear in S). `num_warps`: each program's width (one
    program per row and group; None: CIRCULAR_WARPS or RANKED_WARPS; benchmarks/scripts/plan_warps_h200.py times
    the choices)."""
    batch, groups, picks = wanted.shape
    num_slots, capacity = slot_block.shape[2], block_slot.shape[2] - 1
    require(0 < picks <= num_slots, f"{picks} wanted blocks per group do not fit in {num_slots} slots")
    for name, tensor, shape in (("wanted", wanted, (batch, groups, picks)),
                                ("slot_block", slot_block, (batch, groups, num_slots)),
                                ("slot_last_wanted", slot_last_wanted, (batch, groups, num_slots)),
                                ("block_slot", block_slot, (batch, groups, capacity + 1)),
                                ("counters", counters, (4,))):
        check_index(name, tensor, shape)
        require(tensor.dtype == torch.int64 and tensor.is_contiguous(), f"{name} must be contiguous int64")
    require(step.numel() == 1 and step.dtype == torch.int64, "step must be one int64")
    check_same_device(wanted=wanted, slot_block=slot_block, block_slot=block_slot, step=step, counters=counters)
    hits = torch.empty(wanted.shape, dtype=torch.bool, device=wanted.device)
    copy_mask = torch.empty_like(hits)
    dest_slots = torch.empty_like(wanted)
    source_rows = torch.empty(wanted.numel(), dtype=torch.int64, device=wanted.device)
    target_rows = torch.empty_like(source_rows)
    k_pad = triton.next_power_of_2(picks)
    shape_arguments = (picks, num_slots, capacity, source_blocks_per_row, target_slots_per_row, reserved_slots)
    if cursor is None:
        scratch = torch.empty_like(slot_last_wanted)
        _plan_resident_blocks_kernel[(batch * groups,)](
            wanted, slot_block, slot_last_wanted, block_slot, step, counters, scratch, hits, copy_mask, dest_slots,
            source_rows, target_rows, *shape_arguments, WANTED_KEY=WANTED_KEY, K_PAD=k_pad, SLOT_CHUNK=SLOT_CHUNK,
            num_warps=num_warps or RANKED_WARPS,
        )
    else:
        check_index("cursor", cursor, (batch, groups))
        require(cursor.dtype == torch.int64 and cursor.is_contiguous(), "cursor must be contiguous int64")
        scratch = torch.empty((batch, groups, k_pad), dtype=torch.int64, device=wanted.device)
        _plan_resident_circular_kernel[(batch * groups,)](
            wanted, slot_block, slot_last_wanted, block_slot, step, cursor, counters, scratch, hits, copy_mask,
            dest_slots, source_rows, target_rows, *shape_arguments, K_PAD=k_pad,
            CHUNK=min(CIRCULAR_CHUNK, triton.next_power_of_2(num_slots)),
            num_warps=num_warps or CIRCULAR_WARPS,
        )
    return hits, copy_mask, dest_slots, source_rows, target_rows


TRANSLATE_CHUNK = 256


@triton.jit
def _translate_positions_kernel(
    positions_ptr, valid_ptr, block_slot_ptr, out_positions_ptr, out_valid_ptr,
    T, C, block_size, reserved_slots, fixed,
    CHUNK: tl.constexpr,
):
    row_group = tl.program_id(0).to(tl.int64)
    entries = tl.program_id(1) * CHUNK + tl.arange(0, CHUNK)
    in_range = entries < T
    offsets = row_group * T + entries
    positions = tl.load(positions_ptr + offsets, mask=in_range, other=0)
    valid = tl.load(valid_ptr + offsets, mask=in_range, other=0) != 0
    blocks = tl.minimum(tl.where(valid & (positions >= 0), positions // block_size, C), C)
    slots = tl.load(block_slot_ptr + row_group * (C + 1) + blocks, mask=in_range, other=-1)
    resident = valid & (slots >= 0)
    translated = tl.where(resident, (reserved_slots + slots) * block_size + positions % block_size, 0)
    is_fixed = entries < fixed
    tl.store(out_positions_ptr + offsets, tl.where(is_fixed, positions, translated), mask=in_range)
    tl.store(out_valid_ptr + offsets, tl.where(is_fixed, valid, resident), mask=in_range)


def translate_positions(
    positions: torch.Tensor,
    valid: torch.Tensor,
    block_slot: torch.Tensor,
    block_size: int,
    reserved_slots: int,
    fixed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One launch of naive.translate_positions (shapes and semantics there)."""
    batch, groups, tokens = positions.shape
    check_index("positions", positions, (batch, groups, tokens))
    check_index("block_slot", block_slot, (batch, groups, block_slot.shape[2]))
    require(valid.shape == positions.shape and valid.dtype == torch.bool, "valid must be bool, shaped as positions")
    require(positions.dtype == block_slot.dtype == torch.int64, "positions and block_slot must be int64")
    require(positions.is_contiguous() and valid.is_contiguous() and block_slot.is_contiguous(),
            "positions, valid and block_slot must be contiguous")
    check_same_device(positions=positions, valid=valid, block_slot=block_slot)
    out_positions = torch.empty_like(positions)
    out_valid = torch.empty_like(valid)
    if tokens:
        _translate_positions_kernel[(batch * groups, triton.cdiv(tokens, TRANSLATE_CHUNK))](
            positions, valid, block_slot, out_positions, out_valid, tokens, block_slot.shape[2] - 1, block_size,
            reserved_slots, fixed, CHUNK=TRANSLATE_CHUNK,
        )
    return out_positions, out_valid


@triton.jit
def _forget_resident_blocks_kernel(
    slot_block_ptr, slot_last_wanted_ptr, block_slot_ptr, first_block_ptr, S, C, CHUNK: tl.constexpr,
):
    row_group = tl.program_id(0).to(tl.int64)
    first_block = tl.load(first_block_ptr)
    for begin in range(0, S, CHUNK):
        slots = begin + tl.arange(0, CHUNK)
        in_range = slots < S
        blocks = tl.load(slot_block_ptr + row_group * S + slots, mask=in_range, other=-1)
        stale = in_range & (blocks >= first_block)
        tl.store(block_slot_ptr + row_group * (C + 1) + blocks, tl.full((CHUNK,), -1, tl.int64), mask=stale)
        tl.store(slot_block_ptr + row_group * S + slots, tl.full((CHUNK,), -1, tl.int64), mask=stale)
        tl.store(slot_last_wanted_ptr + row_group * S + slots, tl.full((CHUNK,), -1, tl.int64), mask=stale)


def forget_resident_blocks(
    slot_block: torch.Tensor, slot_last_wanted: torch.Tensor, block_slot: torch.Tensor, first_block: torch.Tensor
) -> None:
    """One launch of naive.forget_resident_blocks (shapes and semantics there)."""
    batch, groups, num_slots = slot_block.shape
    for name, tensor, shape in (("slot_block", slot_block, (batch, groups, num_slots)),
                                ("slot_last_wanted", slot_last_wanted, (batch, groups, num_slots)),
                                ("block_slot", block_slot, (batch, groups, block_slot.shape[2]))):
        check_index(name, tensor, shape)
        require(tensor.dtype == torch.int64 and tensor.is_contiguous(), f"{name} must be contiguous int64")
    require(first_block.numel() == 1 and first_block.dtype == torch.int64, "first_block must be one int64")
    check_same_device(slot_block=slot_block, block_slot=block_slot, first_block=first_block)
    _forget_resident_blocks_kernel[(batch * groups,)](
        slot_block, slot_last_wanted, block_slot, first_block, num_slots, block_slot.shape[2] - 1,
        CHUNK=min(CIRCULAR_CHUNK, triton.next_power_of_2(num_slots)),
    )


SORT_LIMIT = 16384  # ids per row that one program sorts in registers


@triton.jit
def _sorted_with_successors_kernel(ids_ptr, limit_ptr, out_ptr, groups, T, SUCCESSORS: tl.constexpr,
                                   PAD: tl.constexpr):
    # Entry e of the row's T * (1 + n) is id e % T plus distance e // T; sorted as int32 in registers.
    row = tl.program_id(0).to(tl.int64)
    entries = tl.arange(0, PAD)
    in_range = entries < T * (1 + SUCCESSORS)
    distance = entries // T
    ids = tl.load(ids_ptr + row * T + entries % T, mask=in_range, other=-1).to(tl.int32)
    keep = ids >= 0
    if SUCCESSORS > 0:
        limit = tl.load(limit_ptr + row // groups).to(tl.int32)
        keep &= (distance == 0) | (ids + distance < limit)
    candidates = tl.where(in_range, tl.where(keep, ids + distance, -1), 2**31 - 1)  # padding sorts last
    ordered = tl.sort(candidates, 0)
    out_row = out_ptr + row * T * (1 + SUCCESSORS)
    tl.store(out_row + entries, ordered.to(tl.int64), mask=in_range)
    tl.debug_barrier()
    previous = tl.load(out_row + entries - 1, mask=in_range & (entries > 0), other=-2).to(tl.int32)
    tl.debug_barrier()  # every neighbour read before any repeat is overwritten
    tl.store(out_row + entries, tl.full((PAD,), -1, tl.int64), mask=in_range & (previous == ordered))


def sorted_with_successors(ids: torch.Tensor, limit: torch.Tensor | None, successors: int) -> torch.Tensor:
    """naive.sorted_with_successors in one launch for ids in [-1, 2**31 - 1 - successors) (token positions): one
    program per (row, group) builds the ids and their successors, sorts them as int32 in registers (a bitonic sort)
    and blanks the repeats; rows longer than SORT_LIMIT (large budgets with several successors each) go to the
    PyTorch reference."""
    batch, groups, tokens = ids.shape
    require(ids.dtype == torch.int64, f"ids must be int64, got {ids.dtype}")
    require(successors >= 0 and (successors == 0 or limit is not None), "successors need a limit")
    width = tokens * (1 + successors)
    if width == 0 or width > SORT_LIMIT:
        return naive.sorted_with_successors(ids, limit, successors)
    if successors:
        require(limit.shape == (batch,) and limit.dtype == torch.int64, f"limit must be int64 [{batch}]")
        check_same_device(ids=ids, limit=limit)
    ids = ids.contiguous()
    out = torch.empty((batch, groups, width), dtype=torch.int64, device=ids.device)
    pad = triton.next_power_of_2(width)
    _sorted_with_successors_kernel[(batch * groups,)](
        ids, ids if limit is None else limit.contiguous(), out, groups, tokens, SUCCESSORS=successors, PAD=pad,
        num_warps=max(1, min(8, pad // 256)),
    )
    return out
