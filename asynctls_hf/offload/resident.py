"""ResidentSet: which blocks of an offloaded layer sit in which device slots, per batch row and KV group."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asynctls_hf import ops


@dataclass
class CopyPlan:
    """The copies one step needs, as planned by ResidentSet.plan (all tensors on the resident set's device).

    wanted [B, NG, K] int64: the block ids asked for (-1: none). hits [B, NG, K] bool: already resident.
    copy_mask [B, NG, K] bool: to be copied (wanted and not resident). source_blocks [B, NG, K] int64: the block
    to copy (-1 where nothing is copied). dest_slots [B, NG, K] int64: the slot it goes to (-1 likewise).
    copy_count [B, NG] int64: copies per row and group. num_slots: block slots per row and group;
    reserved_slots: slots before them in each (row, group) of the device buffer that hold no block.
    """

    wanted: torch.Tensor
    hits: torch.Tensor
    copy_mask: torch.Tensor
    source_blocks: torch.Tensor
    dest_slots: torch.Tensor
    copy_count: torch.Tensor
    num_slots: int
    reserved_slots: int = 0

    def row_indices(self, capacity_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(source rows, target rows), each [B * NG * K] int64 on the plan's device, of every planned pick: the
        block's row in the store seen as [B * NG * capacity_blocks, block_size * D], and its slot's row in the
        device buffer seen as [B * NG * (reserved_slots + num_slots), block_size * D]. Picks where copy_mask is
        False point at row 0 of each (the copy skips them). Nothing here synchronizes with the host."""
        batch, num_groups, _ = self.copy_mask.shape
        row_group = (
            torch.arange(batch, device=self.copy_mask.device)[:, None, None] * num_groups
            + torch.arange(num_groups, device=self.copy_mask.device)[None, :, None]
        )
        source_rows = row_group * capacity_blocks + self.source_blocks.clamp(0, capacity_blocks - 1)
        target_rows = row_group * (self.reserved_slots + self.num_slots) + self.reserved_slots
        target_rows = target_rows + self.dest_slots.clamp(min=0)
        return source_rows.flatten(), target_rows.flatten()


class ResidentSet:
    """Bookkeeping of the device slots of one offloaded layer: `num_slots` block slots per (row, group).

    In the device buffer [B, NG, (reserved_slots + num_slots) * block_size, D], block slot s of (row, group) is
    buffer slot reserved_slots + s (the reserved ones hold data the caller manages itself, such as a window).

    State, all on `device` and updated in place with vectorized tensor ops (no loop over rows or groups, no host
    sync, no host int in a kernel argument, so a CUDA graph can capture plan and invalidate_from): slot_block
    [B, NG, S] int64, the block id each slot holds (-1: empty); block_slot [B, NG, C + 1] int64, the slot holding
    each block id (-1: not resident), C = block_capacity, the last column a sink for masked scatters;
    slot_last_wanted [B, NG, S] int64, the last step the slot's block was wanted (-1: never); step, a 0-dim int64
    tensor, the number of plans made.

    Eviction policy (ops.plan_resident_blocks, one Triton launch on CUDA): a miss goes to a slot whose block is
    not wanted this step, least recently wanted first (empty slots first of all, ties to the lower slot). A wanted
    block is never evicted, so K wanted blocks per step need K <= S slots.
    """

    def __init__(
        self,
        batch: int,
        num_groups: int,
        num_slots: int,
        block_capacity: int,
        device: torch.device | str,
        reserved_slots: int = 0,
    ):
        self.num_slots = num_slots
        self.reserved_slots = reserved_slots
        self.device = torch.device(device)
        self.step = torch.zeros((), dtype=torch.long, device=self.device)
        self.slot_block = torch.full((batch, num_groups, num_slots), -1, dtype=torch.long, device=self.device)
        self.slot_last_wanted = torch.full_like(self.slot_block, -1)
        self.block_slot = torch.full((batch, num_groups, block_capacity + 1), -1, dtype=torch.long, device=self.device)

    @property
    def block_capacity(self) -> int:
        return self.block_slot.shape[2] - 1

    def ensure_block_capacity(self, n_blocks: int) -> None:
        """Make room for block ids below `n_blocks` (grows by doubling)."""
        if n_blocks <= self.block_capacity:
            return
        capacity = max(n_blocks, 2 * self.block_capacity)
        grown = torch.full((*self.block_slot.shape[:2], capacity + 1), -1, dtype=torch.long, device=self.device)
        grown[:, :, : self.block_capacity] = self.block_slot[:, :, : self.block_capacity]
        self.block_slot = grown

    def lookup(self, blocks: torch.Tensor) -> torch.Tensor:
        """The slot of each block: blocks [B, NG, K] int64 (-1 or ids past the capacity: none) -> [B, NG, K] int64,
        -1 where the block is not resident."""
        known = (blocks >= 0) & (blocks < self.block_capacity)
        slots = self.block_slot.gather(2, torch.where(known, blocks, self.block_capacity))
        return torch.where(known, slots, -1)

    def plan(self, wanted: torch.Tensor) -> CopyPlan:
        """Plan the next step for the blocks `wanted` [B, NG, K] int64 (-1: none; ids unique per row and group,
        below block_capacity) and record the plan as done: the returned copies must be made before the slots
        they fill are read."""
        if wanted.shape[2] > self.num_slots:
            raise ValueError(f"{wanted.shape[2]} wanted blocks per group do not fit in {self.num_slots} slots")
        hits, copy_mask, dest_slots = ops.plan_resident_blocks(
            wanted, self.slot_block, self.slot_last_wanted, self.block_slot, self.step
        )
        self.step += 1
        source_blocks = torch.where(copy_mask, wanted, -1)
        return CopyPlan(
            wanted, hits, copy_mask, source_blocks, dest_slots, copy_mask.sum(dim=2), self.num_slots,
            self.reserved_slots,
        )

    def translate(self, positions: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token positions [B, NG, T] int64 -> (positions in the device buffer [B, NG, T] int64, resident
        [B, NG, T] bool). A token at block b, offset o sits at (reserved_slots + slot_of(b)) * block_size + o in
        the device buffer [B, NG, (reserved_slots + S) * block_size, D]; where its block is not resident (or the
        position is negative) the buffer position is 0 and `resident` is False: the caller must not read it as
        that token."""
        blocks = torch.where(positions >= 0, positions // block_size, -1)
        slots = self.lookup(blocks)
        resident = slots >= 0
        buffer_positions = (self.reserved_slots + slots) * block_size + positions % block_size
        return torch.where(resident, buffer_positions, 0), resident

    def invalidate_from(self, first_block: int | torch.Tensor) -> None:
        """Forget the device copy of every block id >= first_block (blocks whose host data changed: appended to,
        or cropped); first_block an int or a 0-dim int64 tensor on the device."""
        stale = self.slot_block >= first_block
        self.slot_block.masked_fill_(stale, -1)
        self.slot_last_wanted.masked_fill_(stale, -1)
        block_ids = torch.arange(self.block_capacity + 1, device=self.device)
        self.block_slot.masked_fill_(block_ids >= first_block, -1)

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (reorder, repeat) the batch rows `rows` [B'] int64."""
        rows = rows.to(self.device)
        self.slot_block = self.slot_block.index_select(0, rows)
        self.slot_last_wanted = self.slot_last_wanted.index_select(0, rows)
        self.block_slot = self.block_slot.index_select(0, rows)

    def reset(self) -> None:
        """Empty every slot."""
        self.step.zero_()
        self.slot_block.fill_(-1)
        self.slot_last_wanted.fill_(-1)
        self.block_slot.fill_(-1)
