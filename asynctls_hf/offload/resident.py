"""ResidentSet: which blocks of an offloaded layer sit in which device slots, per batch row and KV group."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asynctls_hf import ops


@dataclass
class CopyPlan:
    """The copies one step needs, as planned by ResidentSet.plan (all tensors on the resident set's device).

    wanted [B, NG, K] int64: the block ids asked for (-1: none). hits [B, NG, K] bool: already resident.
    copy_mask [B, NG, K] bool: to be copied (wanted and not resident). dest_slots [B, NG, K] int64: the slot a
    copied block goes to (-1 elsewhere). source_rows, target_rows [B * NG * K] int64: each pick's block as a row
    of the store seen as [B * NG * store blocks per row, row_tokens * D], and its slot as a row of the device
    buffer seen as [B * NG * (reserved_slots + num_slots), row_tokens * D] (0 where copy_mask is False).
    row_tokens: the tokens one block id stands for (the store's block size, or 1 when the resident set holds
    single tokens). Nothing here synchronizes with the host.
    """

    wanted: torch.Tensor
    hits: torch.Tensor
    copy_mask: torch.Tensor
    dest_slots: torch.Tensor
    source_rows: torch.Tensor
    target_rows: torch.Tensor
    row_tokens: int


class ResidentSet:
    """Bookkeeping of the device slots of one offloaded layer: `num_slots` block slots per (row, group).

    In the device buffer [B, NG, (reserved_slots + num_slots) * block_size, D], block slot s of (row, group) is
    buffer slot reserved_slots + s (the reserved ones hold data the caller manages itself, such as a window).

    State, all on `device` and updated in place with vectorized tensor ops (no loop over rows or groups, no host
    sync, no host int in a kernel argument, so a CUDA graph can capture plan and invalidate_from): slot_block
    [B, NG, S] int64, the block id each slot holds (-1: empty); block_slot [B, NG, C + 1] int64, the slot holding
    each block id (-1: not resident), C = block_capacity, the last column a sink for masked scatters;
    slot_last_wanted [B, NG, S] int64, the last step the slot's block was wanted (-1: never); step, a 0-dim int64
    tensor, the number of plans made; counters [4] int64, added to by every plan: (plans, wanted blocks, hits,
    misses), zeroed only by the owner (statistics).

    Eviction policy (ops.plan_resident_blocks, one Triton launch on CUDA): a miss goes to a slot whose block is
    not wanted this step, least recently wanted first (empty slots first of all, ties to the lower slot); with
    `circular` (for thousands of slots, where ranking them all costs too much) the next such slot in circular
    order from a cursor [B, NG] int64 that moves past each slot taken (first in, first out). A wanted block is
    never evicted, so K wanted blocks per step need K <= S slots. `backend` chooses the ops' kernels
    (asynctls_hf.ops).
    """

    def __init__(
        self,
        batch: int,
        num_groups: int,
        num_slots: int,
        block_capacity: int,
        device: torch.device | str,
        reserved_slots: int = 0,
        backend: str = "auto",
        circular: bool = False,
    ):
        self.num_slots = num_slots
        self.backend = backend
        self.reserved_slots = reserved_slots
        self.device = torch.device(device)
        self.step = torch.zeros((), dtype=torch.long, device=self.device)
        self.counters = torch.zeros(4, dtype=torch.long, device=self.device)
        self.slot_block = torch.full((batch, num_groups, num_slots), -1, dtype=torch.long, device=self.device)
        self.slot_last_wanted = torch.full_like(self.slot_block, -1)
        self.block_slot = torch.full((batch, num_groups, block_capacity + 1), -1, dtype=torch.long, device=self.device)
        self.cursor = torch.zeros((batch, num_groups), dtype=torch.long, device=self.device) if circular else None

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

    def resident_only(self, blocks: torch.Tensor) -> torch.Tensor:
        """blocks [B, NG, K] int64 with -1 in place of every block that is not resident."""
        _, resident = ops.translate_positions(blocks, blocks >= 0, self.block_slot, 1, 0, 0, backend=self.backend)
        return torch.where(resident, blocks, -1)

    def plan(self, wanted: torch.Tensor, store_blocks_per_row: int | None = None, *, row_tokens: int) -> CopyPlan:
        """Plan the next step for the blocks `wanted` [B, NG, K] int64 (-1: none; ids unique per row and group,
        below block_capacity) and record the plan as done: the returned copies must be made before the slots
        they fill are read. store_blocks_per_row numbers the source rows (the store's capacity in blocks; default
        block_capacity); row_tokens: the tokens a block id stands for (CopyPlan)."""
        if wanted.shape[2] > self.num_slots:
            raise ValueError(f"{wanted.shape[2]} wanted blocks per group do not fit in {self.num_slots} slots")
        hits, copy_mask, dest_slots, source_rows, target_rows = ops.plan_resident_blocks(
            wanted, self.slot_block, self.slot_last_wanted, self.block_slot, self.step, self.counters,
            self.block_capacity if store_blocks_per_row is None else store_blocks_per_row,
            self.reserved_slots + self.num_slots, self.reserved_slots, cursor=self.cursor, backend=self.backend,
        )
        self.step += 1
        return CopyPlan(wanted, hits, copy_mask, dest_slots, source_rows, target_rows, row_tokens)

    def translate(
        self, positions: torch.Tensor, block_size: int, valid: torch.Tensor | None = None, fixed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token positions [B, NG, T] int64 -> (positions in the device buffer [B, NG, T] int64, resident
        [B, NG, T] bool), one launch on CUDA (ops.translate_positions). A token at block b, offset o sits at
        (reserved_slots + slot_of(b)) * block_size + o in the device buffer [B, NG, (reserved_slots + S) *
        block_size, D]; where its block is not resident, the position is negative or `valid` [B, NG, T] bool
        (default: all) is False, the buffer position is 0 and `resident` is False: the caller must not read it as
        that token. The first `fixed` entries are buffer positions already and pass through with their `valid`."""
        if valid is None:
            valid = positions >= 0
        return ops.translate_positions(
            positions, valid, self.block_slot, block_size, self.reserved_slots, fixed, backend=self.backend
        )

    def invalidate_from(self, first_block: int | torch.Tensor) -> None:
        """Forget the device copy of every block id >= first_block (blocks whose host data changed: appended to,
        or cropped); first_block an int or a 0-dim int64 tensor on the device (one launch on CUDA)."""
        if not isinstance(first_block, torch.Tensor):
            first_block = torch.tensor(first_block, device=self.device)
        ops.forget_resident_blocks(
            self.slot_block, self.slot_last_wanted, self.block_slot, first_block, backend=self.backend
        )

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (reorder, repeat) the batch rows `rows` [B'] int64."""
        rows = rows.to(self.device)
        self.slot_block = self.slot_block.index_select(0, rows)
        self.slot_last_wanted = self.slot_last_wanted.index_select(0, rows)
        self.block_slot = self.block_slot.index_select(0, rows)
        if self.cursor is not None:
            self.cursor = self.cursor.index_select(0, rows)

    def reset(self) -> None:
        """Empty every slot."""
        self.step.zero_()
        self.slot_block.fill_(-1)
        self.slot_last_wanted.fill_(-1)
        self.block_slot.fill_(-1)
        if self.cursor is not None:
            self.cursor.zero_()
