"""Triton kernel of naive.copy_rows: copy rows between two row-major tensors, which may live in pinned host memory.

A CUDA kernel can read and write pinned host memory through its mapped address (unified addressing), so one launch
moves a step's missing blocks straight from the pinned store into the device slots, or a new token's keys into the
store, with no host synchronization and no staging copy: which rows to copy stays on the device.

A work item is a tile of ROWS listed rows by CHUNK columns, so that one program has the reads of several rows in
flight at once: a single token's row (256 bytes) read from host memory is a bus round trip, and a step lists
thousands of rows of which most are not copied (already resident). A second pair of tensors (the values beside the
keys) is copied at the same rows by the same items, its reads issued before either pair's writes.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import require

CHUNK = 1024  # columns per work item at most (a narrower row: its width rounded up to a power of two)
TILE = 2048  # elements per work item: ROWS = TILE // chunk rows of `chunk` columns


@triton.jit
def _copy_rows_kernel(source_ptr, target_ptr, second_source_ptr, second_target_ptr, source_rows_ptr,
                      target_rows_ptr, valid_ptr, n_rows, items, WIDTH: tl.constexpr, CHUNK: tl.constexpr,
                      CHUNKS_PER_ROW: tl.constexpr, ROWS: tl.constexpr, PAIRED: tl.constexpr):
    # Work item i copies column chunk i % CHUNKS_PER_ROW of listed rows (i // CHUNKS_PER_ROW) * ROWS + 0..ROWS-1;
    # program p takes items p, p + P, ...
    for item in range(tl.program_id(0), items, tl.num_programs(0)):
        rows = (item // CHUNKS_PER_ROW) * ROWS + tl.arange(0, ROWS)
        columns = (item % CHUNKS_PER_ROW) * CHUNK + tl.arange(0, CHUNK)
        copied = tl.load(valid_ptr + rows, mask=rows < n_rows, other=0) != 0
        source_row = tl.load(source_rows_ptr + rows, mask=copied, other=0).to(tl.int64)
        target_row = tl.load(target_rows_ptr + rows, mask=copied, other=0).to(tl.int64)
        mask = copied[:, None] & (columns < WIDTH)[None, :]
        source_offsets = source_row[:, None] * WIDTH + columns[None, :]
        target_offsets = target_row[:, None] * WIDTH + columns[None, :]
        values = tl.load(source_ptr + source_offsets, mask=mask)
        if PAIRED:
            second_values = tl.load(second_source_ptr + source_offsets, mask=mask)
        tl.store(target_ptr + target_offsets, values, mask=mask)
        if PAIRED:
            tl.store(second_target_ptr + target_offsets, second_values, mask=mask)


def copy_rows(
    source: torch.Tensor,
    target: torch.Tensor,
    source_rows: torch.Tensor,
    target_rows: torch.Tensor,
    valid: torch.Tensor,
    programs: int | None = None,
    second: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> None:
    """target[target_rows[n]] = source[source_rows[n]] where valid[n] (and the same for the pair `second`, in the
    same launch); shapes in naive.copy_rows.

    `programs` caps the launch's grid: None launches one program per work item (a tile of up to TILE elements: rows
    of the list by a piece of at most CHUNK columns); a number P launches at most P programs that loop over the
    items, leaving the rest of the GPU to kernels running beside the copy."""
    pairs = [(source, target)] if second is None else [(source, target), second]
    for pair_source, pair_target in pairs:
        require(pair_source.dim() == 2 and pair_target.dim() == 2, "sources and targets must be 2D [rows, width]")
        require(pair_source.shape[1] == pair_target.shape[1] == source.shape[1],
                f"row widths differ: {pair_source.shape[1]}, {pair_target.shape[1]} and {source.shape[1]}")
        require(pair_source.dtype == pair_target.dtype == source.dtype,
                f"dtypes differ: {pair_source.dtype}, {pair_target.dtype} and {source.dtype}")
        require(pair_source.is_contiguous() and pair_target.is_contiguous(), "sources and targets must be contiguous")
    require(source_rows.shape == target_rows.shape == valid.shape and source_rows.dim() == 1,
            "source_rows, target_rows and valid must be [N]")
    require(valid.dtype == torch.bool and valid.is_contiguous() and source_rows.is_contiguous()
            and target_rows.is_contiguous(), "valid must be bool; valid and the row indices contiguous")
    require(programs is None or programs > 0, f"programs must be None or positive, got {programs}")
    chunk = min(CHUNK, triton.next_power_of_2(source.shape[1]))
    chunks_per_row = triton.cdiv(source.shape[1], chunk)
    rows_per_item = TILE // chunk
    items = triton.cdiv(source_rows.shape[0], rows_per_item) * chunks_per_row
    if items == 0:
        return
    second_source, second_target = (source, target) if second is None else second
    grid = (items if programs is None else min(items, programs),)
    _copy_rows_kernel[grid](
        source, target, second_source, second_target, source_rows, target_rows, valid, source_rows.shape[0], items,
        WIDTH=source.shape[1], CHUNK=chunk, CHUNKS_PER_ROW=chunks_per_row, ROWS=rows_per_item,
        PAIRED=second is not None,
    )
